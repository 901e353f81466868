#include "text/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "text/jinja_internal.h"
#include "text/unicode.h"

namespace hfpipe::text::jinja {

const Val* ValDict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}
Val* ValDict::find(std::string_view key) {
  for (auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}
void ValDict::set(const std::string& key, Val value) {
  if (Val* v = find(key)) *v = std::move(value);
  else items.emplace_back(key, std::move(value));
}

namespace {
Val of_kind(Val::Kind k) {
  Val v;
  v.kind = k;
  return v;
}
}  // namespace

Val Val::undefined(std::string why) {
  Val v;
  v.s = std::move(why);
  return v;
}
Val Val::none() { return of_kind(Kind::None); }
Val Val::boolean(bool b) {
  Val v = of_kind(Kind::Bool);
  v.b = b;
  return v;
}
Val Val::integer(int64_t i) {
  Val v = of_kind(Kind::Int);
  v.i = i;
  return v;
}
Val Val::number(double f) {
  Val v = of_kind(Kind::Float);
  v.f = f;
  return v;
}
Val Val::str(std::string s) {
  Val v = of_kind(Kind::Str);
  v.s = std::move(s);
  return v;
}
namespace {
uint16_t container_depth(size_t deepest_child) {
  if (deepest_child >= size_t(kMaxDepth)) template_error("value nested more than " + std::to_string(kMaxDepth) + " levels deep");
  return uint16_t(deepest_child + 1);
}
}  // namespace

Val Val::make_list(ValList items, bool as_tuple) {
  Val v = of_kind(Kind::List);
  size_t deepest = 0;
  for (const auto& e : items) deepest = std::max<size_t>(deepest, e.depth);
  v.depth = container_depth(deepest);
  v.list = std::make_shared<const ValList>(std::move(items));
  v.tuple = as_tuple;
  return v;
}
Val Val::make_dict(ValDict d) {
  Val v = of_kind(Kind::Dict);
  size_t deepest = 0;
  for (const auto& [k, e] : d.items) deepest = std::max<size_t>(deepest, e.depth);
  v.depth = container_depth(deepest);
  v.dict = std::make_shared<ValDict>(std::move(d));
  return v;
}
Val Val::make_namespace(ValDict d) {
  Val v = make_dict(std::move(d));
  v.kind = Kind::Namespace;
  return v;
}
Val Val::function(std::string name, Function f) {
  Val v;
  v.kind = Kind::Func;
  v.s = std::move(name);
  v.fn = std::make_shared<const Function>(std::move(f));
  return v;
}

std::optional<Val> CallArgs::take(size_t index, std::string_view name) {
  std::optional<Val> found;
  if (index < positional.size() && positional[index]) {
    found = std::move(positional[index]);
    positional[index].reset();
  }
  for (auto it = keyword.begin(); it != keyword.end(); ++it) {
    if (it->first != name) continue;
    if (found) template_error(callee + " got multiple values for argument '" + std::string(name) + "'");
    found = std::move(it->second);
    keyword.erase(it);
    break;
  }
  return found;
}

void CallArgs::done() const {
  for (const auto& v : positional)
    if (v) template_error(callee + " got too many positional arguments");
  if (!keyword.empty()) template_error(callee + " got an unexpected keyword argument '" + keyword.front().first + "'");
}

Val from_json(const Value& v, int depth) {
  if (depth > kMaxDepth) template_error("value nested more than " + std::to_string(kMaxDepth) + " levels deep");
  switch (v.type()) {
    case Value::value_t::null: return Val::none();
    case Value::value_t::boolean: return Val::boolean(v.get<bool>());
    case Value::value_t::number_integer: return Val::integer(v.get<int64_t>());
    case Value::value_t::number_unsigned: {
      uint64_t u = v.get<uint64_t>();
      if (u > uint64_t(INT64_MAX)) template_error("integer " + std::to_string(u) + " is too large for a chat template");
      return Val::integer(int64_t(u));
    }
    case Value::value_t::number_float: return Val::number(v.get<double>());
    case Value::value_t::string: return Val::str(v.get<std::string>());
    case Value::value_t::array: {
      ValList items;
      items.reserve(v.size());
      for (const auto& e : v) items.push_back(from_json(e, depth + 1));
      return Val::make_list(std::move(items));
    }
    case Value::value_t::object: {
      ValDict d;
      for (auto it = v.begin(); it != v.end(); ++it) d.items.emplace_back(it.key(), from_json(it.value(), depth + 1));
      return Val::make_dict(std::move(d));
    }
    default: template_error("unsupported JSON value in chat template variables");
  }
}

bool py_isspace(char32_t c) { return unicode::is_whitespace(c) || (c >= 0x1C && c <= 0x1F); }

// repr(float): the shortest digits that round-trip, in fixed notation when the decimal
// exponent is in [-4, 16), else scientific with a signed exponent of at least two digits.
std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  std::string sign;
  if (!mant.empty() && mant[0] == '-') sign = "-", mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(size_t(-exp - 1), '0') + digits;
    } else if (size_t(exp) + 1 >= digits.size()) {
      out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return sign + out + ebuf;
}

namespace {

bool is_printable(char32_t c) {
  // Python's str.isprintable: not Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs other than the space.
  if (c == ' ') return true;
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  return !unicode::is_other_old(c) && !(c >= 0x80 && c <= 0x9F) && c != 0x2028 && c != 0x2029 && c != 0xA0 &&
         c != 0x1680 && !(c >= 0x2000 && c <= 0x200A) && c != 0x202F && c != 0x205F && c != 0x3000;
}

std::string repr_str(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const char32_t c = unicode::decode(s, i, &len);
    if (c == char32_t(quote) || c == '\\') out += '\\', out += char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (!is_printable(c)) {
      char buf[16];
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(c));
      out += buf;
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out += quote;
  return out;
}

}  // namespace

std::string py_str(const Val& v) {
  switch (v.kind) {
    case Val::Kind::Undefined: return "";
    case Val::Kind::Str: return v.s;
    default: return py_repr(v);
  }
}

std::string py_repr(const Val& v) {
  switch (v.kind) {
    case Val::Kind::Undefined: return "";
    case Val::Kind::None: return "None";
    case Val::Kind::Bool: return v.b ? "True" : "False";
    case Val::Kind::Int: return std::to_string(v.i);
    case Val::Kind::Float: return py_float_repr(v.f);
    case Val::Kind::Str: return repr_str(v.s);
    case Val::Kind::List: {
      std::string out = v.tuple ? "(" : "[";
      for (size_t k = 0; k < v.items().size(); ++k) out += (k ? ", " : "") + py_repr(v.items()[k]);
      if (v.tuple && v.items().size() == 1) out += ",";
      return out + (v.tuple ? ")" : "]");
    }
    case Val::Kind::Dict:
    case Val::Kind::Namespace: {
      std::string out = v.kind == Val::Kind::Namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, e] : v.dict->items) out += (first ? "" : ", ") + repr_str(k) + ": " + py_repr(e), first = false;
      return out + (v.kind == Val::Kind::Namespace ? "}>" : "}");
    }
    case Val::Kind::Func: return "<function " + v.s + ">";
  }
  return "";
}

bool truthy(const Val& v) {
  switch (v.kind) {
    case Val::Kind::Undefined:
    case Val::Kind::None: return false;
    case Val::Kind::Bool: return v.b;
    case Val::Kind::Int: return v.i != 0;
    case Val::Kind::Float: return v.f != 0;
    case Val::Kind::Str: return !v.s.empty();
    case Val::Kind::List: return !v.items().empty();
    case Val::Kind::Dict: return !v.dict->items.empty();
    default: return true;
  }
}

namespace {
double as_double(const Val& v) { return v.kind == Val::Kind::Float ? v.f : v.kind == Val::Kind::Int ? double(v.i) : v.b; }
}  // namespace

bool equals(const Val& a, const Val& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind != Val::Kind::Float && b.kind != Val::Kind::Float)
      return (a.kind == Val::Kind::Int ? a.i : a.b) == (b.kind == Val::Kind::Int ? b.i : b.b);
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Val::Kind::Undefined:
    case Val::Kind::None: return true;
    case Val::Kind::Str: return a.s == b.s;
    case Val::Kind::List: {
      if (a.tuple != b.tuple || a.items().size() != b.items().size()) return false;
      for (size_t k = 0; k < a.items().size(); ++k)
        if (!equals(a.items()[k], b.items()[k])) return false;
      return true;
    }
    case Val::Kind::Dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Val* o = b.dict->find(k);
        if (!o || !equals(v, *o)) return false;
      }
      return true;
    }
    default: return a.dict == b.dict && a.fn == b.fn;
  }
}

bool less(const Val& a, const Val& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind != Val::Kind::Float && b.kind != Val::Kind::Float)
      return (a.kind == Val::Kind::Int ? a.i : a.b) < (b.kind == Val::Kind::Int ? b.i : b.b);
    return as_double(a) < as_double(b);
  }
  if (a.is_str() && b.is_str()) {
    // Python compares code points; UTF-8 byte order is the same order.
    return a.s < b.s;
  }
  if (a.is_list() && b.is_list() && a.tuple == b.tuple) {
    const size_t n = std::min(a.items().size(), b.items().size());
    for (size_t k = 0; k < n; ++k)
      if (!equals(a.items()[k], b.items()[k])) return less(a.items()[k], b.items()[k]);
    return a.items().size() < b.items().size();
  }
  if (a.is_undefined() || b.is_undefined()) undefined_error(a.is_undefined() ? a : b);
  template_error("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

std::string type_name(const Val& v) {
  switch (v.kind) {
    case Val::Kind::Undefined: return "Undefined";
    case Val::Kind::None: return "NoneType";
    case Val::Kind::Bool: return "bool";
    case Val::Kind::Int: return "int";
    case Val::Kind::Float: return "float";
    case Val::Kind::Str: return "str";
    case Val::Kind::List: return v.tuple ? "tuple" : "list";
    case Val::Kind::Dict: return "dict";
    case Val::Kind::Namespace: return "Namespace";
    case Val::Kind::Func: return "function";
  }
  return "object";
}

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const char32_t c = unicode::decode(s, i, &len);
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", unsigned(0xD800 + (v >> 10)), unsigned(0xDC00 + (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
          }
          out += buf;
        } else {
          out.append(s.substr(i, len));
        }
    }
    i += len;
  }
  out += '"';
}

struct JsonWriter {
  const JsonOptions& o;
  std::string item_sep, key_sep, indent_unit;
  bool pretty;
  std::string out;
  int depth = 0;

  explicit JsonWriter(const JsonOptions& options) : o(options) {
    pretty = o.indent_text.has_value() || o.indent >= 0;
    indent_unit = o.indent_text ? *o.indent_text : std::string(size_t(std::max(o.indent, 0)), ' ');
    item_sep = pretty ? "," : ", ";
    key_sep = ": ";
    if (o.separators) item_sep = o.separators->first, key_sep = o.separators->second;
  }

  void newline(int level) {
    out += '\n';
    for (int k = 0; k < level; ++k) out += indent_unit;
  }

  void write(const Val& v) {
    if (++depth > kMaxDepth) template_error("tojson: value nested too deeply");
    switch (v.kind) {
      case Val::Kind::None: out += "null"; break;
      case Val::Kind::Bool: out += v.b ? "true" : "false"; break;
      case Val::Kind::Int: out += std::to_string(v.i); break;
      case Val::Kind::Float:
        out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : py_float_repr(v.f);
        break;
      case Val::Kind::Str: json_string(out, v.s, o.ensure_ascii); break;
      case Val::Kind::List: write_list(v.items()); break;
      case Val::Kind::Dict: write_dict(*v.dict); break;
      default: template_error("Object of type " + type_name(v) + " is not JSON serializable");
    }
    --depth;
  }

  void write_list(const ValList& items) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += item_sep;
      if (pretty) newline(depth);
      write(items[k]);
    }
    if (pretty) newline(depth - 1);
    out += ']';
  }

  void write_dict(const ValDict& d) {
    if (d.items.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<std::string, Val>*> entries;
    for (const auto& e : d.items) entries.push_back(&e);
    if (o.sort_keys)
      std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
    out += '{';
    for (size_t k = 0; k < entries.size(); ++k) {
      if (k) out += item_sep;
      if (pretty) newline(depth);
      json_string(out, entries[k]->first, o.ensure_ascii);
      out += key_sep;
      write(entries[k]->second);
    }
    if (pretty) newline(depth - 1);
    out += '}';
  }
};

}  // namespace

std::string to_json(const Val& v, const JsonOptions& options) {
  JsonWriter w(options);
  w.write(v);
  return std::move(w.out);
}

void template_error(const std::string& message) { throw UnlocatedError(message); }

}  // namespace hfpipe::text::jinja
