// hfpipe's single exception type. Every failure the library reports is an hfpipe::Error
// whose kind() says what class of problem it is and whose what() says what to do about it.
#pragma once

#include <stdexcept>
#include <string>

namespace hfpipe {

enum class ErrorKind {
  InvalidArgument,   // bad input or parameter from the caller
  NotFound,          // a model, file or tensor that is not there
  UnsupportedModel,  // a model_type / architecture / format feature hfpipe does not implement
  CorruptFile,       // a file that exists but does not parse or fails validation
  OutOfMemory,
  Io,                // the operating system refused a read or map
  Network,
  Internal,          // a bug in hfpipe: an invariant that should have held did not
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace hfpipe
