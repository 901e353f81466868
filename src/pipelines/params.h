// Parameter sanitising in one place: a task names the parameters it knows, and anything else
// is refused with the list of known ones (transformers would pass unknown kwargs on to the
// tokenizer or fail late; a clear error up front is kinder).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "hfpipe/value.h"

namespace hfpipe::pipelines {

// Construction-time parameters overridden by the call's (both JSON objects).
Value merge_params(const Value& construction, const Value& call);

class Params {
 public:
  Params(const Value& params, const std::string& task, std::initializer_list<const char*> known);
  // The same with a list built at run time (tasks whose subclasses add parameters).
  Params(const Value& params, const std::string& task, const std::vector<std::string>& known);

  bool has(const std::string& key) const;  // present, even if null
  const Value& get(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::optional<int64_t> get_int(const std::string& key) const;  // unset or null → nullopt
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // A nested object parameter (e.g. tokenize_kwargs); unset or null → empty object.
  Value get_object(const std::string& key) const;

 private:
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;
  const Value& params_;
  std::string task_;
};

}  // namespace hfpipe::pipelines
