// The public interface of hfpipe: include this one header.
#pragma once

#include "hfpipe/errors.h"
#include "hfpipe/pipeline.h"
#include "hfpipe/value.h"
