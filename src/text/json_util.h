// Small checked accessors over simdjson's DOM for reading tokenizer.json: every failure is
// Error(CorruptFile) naming the field ("tokenizer.json: model.vocab: expected an object").
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/numeric.h"
#include "text/token_id.h"

namespace hfpipe::text::json {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

[[noreturn]] inline void corrupt(const std::string& where, const std::string& what) {
  fail(ErrorKind::CorruptFile, where + ": " + what);
}

inline object as_object(const element& e, const std::string& where) {
  object o;
  if (e.get(o) != simdjson::SUCCESS) corrupt(where, "expected an object");
  return o;
}
inline array as_array(const element& e, const std::string& where) {
  array a;
  if (e.get(a) != simdjson::SUCCESS) corrupt(where, "expected an array");
  return a;
}
inline std::string_view as_string(const element& e, const std::string& where) {
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) corrupt(where, "expected a string");
  return s;
}
inline bool as_bool(const element& e, const std::string& where) {
  bool b;
  if (e.get(b) != simdjson::SUCCESS) corrupt(where, "expected true or false");
  return b;
}
inline int64_t as_int(const element& e, const std::string& where) {
  int64_t v;
  if (e.get(v) == simdjson::SUCCESS) return v;
  uint64_t u;
  if (e.get(u) == simdjson::SUCCESS) {
    if (u > uint64_t(INT64_MAX)) corrupt(where, "integer out of range");
    return int64_t(u);
  }
  double d;
  // An integral double such as 3.0 is accepted; the range check comes first because converting
  // an out-of-range double (1e21) to int64_t is undefined behaviour (found by fuzz_tokenizer_json).
  if (e.get(d) == simdjson::SUCCESS && fits_int64(d) && d == double(int64_t(d))) return int64_t(d);
  corrupt(where, "expected an integer");
}
// A token id (or type id, `what`) as the `tokenizers` library reads it: a JSON integer (serde
// refuses 5.0 or -1 for a u32), then hfpipe's int32 limit (token_id.h).
inline uint32_t as_token_id(const element& e, const std::string& where, const char* what = "token id") {
  uint64_t u;
  if (e.get(u) == simdjson::SUCCESS) return checked_token_id(u, where, what);
  int64_t i;
  if (e.get(i) == simdjson::SUCCESS) corrupt(where, std::string("a ") + what + " cannot be negative (" + std::to_string(i) + ")");
  corrupt(where, std::string("expected a ") + what + " (a non-negative integer)");
}
inline uint32_t as_type_id(const element& e, const std::string& where) { return as_token_id(e, where, "type id"); }
inline bool is_null(const element& e) { return e.is_null(); }

// Member lookup: nullopt when absent (or null when `null_is_absent`).
inline std::optional<element> member(const element& obj, std::string_view key, bool null_is_absent = true) {
  object o;
  if (obj.get(o) != simdjson::SUCCESS) return std::nullopt;
  element v;
  if (o.at_key(key).get(v) != simdjson::SUCCESS) return std::nullopt;
  if (null_is_absent && v.is_null()) return std::nullopt;
  return v;
}
inline element required(const element& obj, std::string_view key, const std::string& where) {
  auto v = member(obj, key, false);
  if (!v) corrupt(where, "missing field '" + std::string(key) + "'");
  return *v;
}
inline std::string field_where(const std::string& where, std::string_view key) {
  return where + "." + std::string(key);
}
inline bool get_bool(const element& obj, std::string_view key, bool dflt, const std::string& where) {
  auto v = member(obj, key);
  return v ? as_bool(*v, field_where(where, key)) : dflt;
}
inline std::optional<bool> get_opt_bool(const element& obj, std::string_view key, const std::string& where) {
  auto v = member(obj, key);
  if (!v) return std::nullopt;
  return as_bool(*v, field_where(where, key));
}
inline std::optional<std::string> get_opt_string(const element& obj, std::string_view key, const std::string& where) {
  auto v = member(obj, key);
  if (!v) return std::nullopt;
  return std::string(as_string(*v, field_where(where, key)));
}
inline std::string get_string(const element& obj, std::string_view key, const std::string& dflt,
                              const std::string& where) {
  auto v = member(obj, key);
  return v ? std::string(as_string(*v, field_where(where, key))) : dflt;
}
inline std::string require_string(const element& obj, std::string_view key, const std::string& where) {
  return std::string(as_string(required(obj, key, where), field_where(where, key)));
}
inline int64_t get_int(const element& obj, std::string_view key, int64_t dflt, const std::string& where) {
  auto v = member(obj, key);
  return v ? as_int(*v, field_where(where, key)) : dflt;
}

// A count or length (a usize in the `tokenizers` library, whose serde refuses -1): negative
// values are refused here rather than cast to a size_t near 2^64.
inline size_t as_count(const element& e, const std::string& where) {
  const int64_t v = as_int(e, where);
  if (v < 0) corrupt(where, "expected a non-negative integer, got " + std::to_string(v));
  return size_t(v);
}
inline size_t get_count(const element& obj, std::string_view key, size_t dflt, const std::string& where) {
  auto v = member(obj, key);
  return v ? as_count(*v, field_where(where, key)) : dflt;
}

// The "type" tag of a component.
inline std::string type_of(const element& obj, const std::string& where) {
  as_object(obj, where);
  return require_string(obj, "type", where);
}

}  // namespace hfpipe::text::json
