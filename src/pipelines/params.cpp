#include "pipelines/params.h"

#include "core/error.h"

namespace hfpipe::pipelines {

Value merge_params(const Value& construction, const Value& call) {
  Value merged = construction.is_object() ? construction : Value::object();
  if (!call.is_null() && !call.is_object()) fail(ErrorKind::InvalidArgument, "parameters must be a JSON object");
  if (call.is_object())
    for (const auto& [key, value] : call.items()) merged[key] = value;
  return merged;
}

Params::Params(const Value& params, const std::string& task, std::initializer_list<const char*> known)
    : Params(params, task, std::vector<std::string>(known.begin(), known.end())) {}

Params::Params(const Value& params, const std::string& task, const std::vector<std::string>& known)
    : params_(params), task_(task) {
  if (!params.is_object()) fail(ErrorKind::InvalidArgument, "parameters must be a JSON object");
  for (const auto& [key, value] : params.items()) {
    bool ok = false;
    for (const auto& k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(ErrorKind::InvalidArgument, "unknown parameter '" + key + "' for " + task + "; known: " + list);
    }
  }
}

bool Params::has(const std::string& key) const { return params_.contains(key); }

const Value& Params::get(const std::string& key) const { return params_.at(key); }

void Params::wrong_type(const std::string& key, const char* expected) const {
  fail(ErrorKind::InvalidArgument,
       "parameter '" + key + "' of " + task_ + " must be " + expected + ", got " + params_.at(key).dump());
}

bool Params::get_bool(const std::string& key, bool fallback) const {
  if (!has(key) || get(key).is_null()) return fallback;
  if (!get(key).is_boolean()) wrong_type(key, "true or false");
  return get(key).get<bool>();
}

std::optional<int64_t> Params::get_int(const std::string& key) const {
  if (!has(key) || get(key).is_null()) return std::nullopt;
  if (!get(key).is_number_integer()) wrong_type(key, "an integer");
  return get(key).get<int64_t>();
}

std::string Params::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key) || get(key).is_null()) return fallback;
  if (!get(key).is_string()) wrong_type(key, "a string");
  return get(key).get<std::string>();
}

Value Params::get_object(const std::string& key) const {
  if (!has(key) || get(key).is_null()) return Value::object();
  if (!get(key).is_object()) wrong_type(key, "an object");
  return get(key);
}

}  // namespace hfpipe::pipelines
