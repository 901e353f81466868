#include "core/json_dump.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace hfpipe {

namespace {

// Leaves that are not floats (strings with their escapes, integers, booleans, null) are
// printed by nlohmann itself so their text stays exactly its own.
void append_leaf(const Value& v, std::string& out) { out += v.dump(-1, ' ', false, Value::error_handler_t::replace); }

void append_float(double d, std::string& out) {
  if (!std::isfinite(d)) {
    out += "null";  // what nlohmann (and so far the CLI) prints for NaN and infinities
    return;
  }
  char buffer[32];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, d);
  const std::string_view text(buffer, static_cast<size_t>(end - buffer));
  out += text;
  // "1" would read back as an integer; Python prints 1.0 and so does nlohmann.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

}  // namespace

void append_json(const Value& v, std::string& out) {
  switch (v.type()) {
    case Value::value_t::array: {
      out += '[';
      bool first = true;
      for (const Value& element : v) {
        if (!first) out += ',';
        first = false;
        append_json(element, out);
      }
      out += ']';
      return;
    }
    case Value::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, element] : v.items()) {
        if (!first) out += ',';
        first = false;
        append_leaf(Value(key), out);
        out += ':';
        append_json(element, out);
      }
      out += '}';
      return;
    }
    case Value::value_t::number_float: append_float(v.get<double>(), out); return;
    default: append_leaf(v, out); return;
  }
}

std::string to_json(const Value& v) {
  std::string out;
  append_json(v, out);
  return out;
}

}  // namespace hfpipe
