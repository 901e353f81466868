#include "core/json_dump.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace hfpipe {

namespace {

// Leaves that are not floats (strings with their escapes, integers, booleans, null) are
// printed by nlohmann itself so their text stays exactly its own.
void append_leaf(const Value& v, std::string& out) { out += v.dump(-1, ' ', false, Value::error_handler_t::replace); }

// A float32 result (every model output is one, widened to double in Value) prints as the
// shortest text that reads back as that float32, as numpy prints np.float32: about 9
// significant digits instead of the 17 of the widened double's repr, and std::to_chars(float)
// costs ~35% less than the double overload. feature-extraction prints millions of them, and
// this printing was ~25% of its CPU time. Other doubles keep their own shortest repr.
bool holds_a_float32(double d) {
  return std::fabs(d) <= std::numeric_limits<float>::max() && static_cast<double>(static_cast<float>(d)) == d;
}

void append_float(double d, std::string& out) {
  if (!std::isfinite(d)) {
    out += "null";  // what nlohmann (and so far the CLI) prints for NaN and infinities
    return;
  }
  char buffer[32];
  const auto [end, error] = holds_a_float32(d) ? std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(d))
                                               : std::to_chars(buffer, buffer + sizeof buffer, d);
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
      // The vector itself: nlohmann's iterators cost more than the elements' printing.
      for (const Value& element : v.get_ref<const Value::array_t&>()) {
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
    case Value::value_t::number_float: append_float(v.get_ref<const double&>(), out); return;
    default: append_leaf(v, out); return;
  }
}

namespace {

void release_below(Value& v, int depth) {
  constexpr int kMaxDepth = 64;
  if (depth > kMaxDepth) return;
  if (v.is_array()) {
    auto& elements = v.get_ref<Value::array_t&>();
    for (Value& element : elements) release_below(element, depth + 1);
    elements.clear();
  } else if (v.is_object()) {
    for (auto& [key, element] : v.items()) release_below(element, depth + 1);
  }
}

}  // namespace

void release(Value& v) { release_below(v, 0); }

std::string to_json(const Value& v) {
  std::string out;
  append_json(v, out);
  return out;
}

}  // namespace hfpipe
