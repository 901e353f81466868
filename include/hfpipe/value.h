// The dynamic value type of hfpipe's generic API: pipeline inputs, call parameters and
// results are JSON-shaped values with the same keys and nesting as transformers' Python
// objects, so the CLI's JSON output and the C++ results are interchangeable.
#pragma once

#include <nlohmann/json.hpp>

namespace hfpipe {

using Value = nlohmann::ordered_json;

}  // namespace hfpipe
