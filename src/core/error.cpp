#include "core/error.h"

#include <iostream>

namespace hfpipe {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument: return "InvalidArgument";
    case ErrorKind::NotFound: return "NotFound";
    case ErrorKind::UnsupportedModel: return "UnsupportedModel";
    case ErrorKind::CorruptFile: return "CorruptFile";
    case ErrorKind::OutOfMemory: return "OutOfMemory";
    case ErrorKind::Io: return "Io";
    case ErrorKind::Network: return "Network";
    case ErrorKind::Internal: return "Internal";
  }
  return "Unknown";
}

void warn(const std::string& message) { std::cerr << message << '\n'; }

}  // namespace hfpipe
