// The run-time values of the Jinja subset (src/text/jinja.h) and the Python behaviour
// chat templates rely on: str() and repr() of every value, truthiness, equality and
// ordering, and json.dumps as transformers' `tojson` filter calls it. Values mirror the
// Python objects jinja2 sees when transformers renders a template: None, bool, int, float,
// str, list (and tuple), dict (insertion-ordered), jinja2's Undefined, namespace() objects
// and callables (macros, globals, bound methods).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hfpipe/value.h"

namespace hfpipe::text::jinja {

struct Val;
using ValList = std::vector<Val>;

// A dict keeps insertion order, as Python's does; keys are strings (chat-template data
// comes from JSON, and the subset refuses other keys).
struct ValDict {
  std::vector<std::pair<std::string, Val>> items;
  const Val* find(std::string_view key) const;
  Val* find(std::string_view key);
  void set(const std::string& key, Val value);
};

struct CallArgs;
using Function = std::function<Val(CallArgs&)>;

struct Val {
  enum class Kind { Undefined, None, Bool, Int, Float, Str, List, Dict, Namespace, Func };
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str; the error message of an Undefined; the name of a Func
  std::shared_ptr<const ValList> list;  // List (immutable: the sandbox forbids mutation)
  bool tuple = false;                   // a List that Python would hold as a tuple
  // How many containers deep this value is (bounded, so that printing, comparing and
  // destroying a value cannot exhaust the stack; namespaces cannot hold namespaces, so
  // values never form cycles).
  uint16_t depth = 0;
  std::shared_ptr<ValDict> dict;        // Dict (shared, never mutated) or Namespace (mutable)
  std::shared_ptr<const Function> fn;

  static Val undefined(std::string why);
  static Val none();
  static Val boolean(bool v);
  static Val integer(int64_t v);
  static Val number(double v);
  static Val str(std::string v);
  static Val make_list(ValList items, bool as_tuple = false);
  static Val make_dict(ValDict d);
  static Val make_namespace(ValDict d);
  static Val function(std::string name, Function f);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_str() const { return kind == Kind::Str; }
  bool is_int() const { return kind == Kind::Int; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  const ValList& items() const { return *list; }
};

// Arguments of a call: positional then keyword, as Python receives them.
struct CallArgs {
  std::string callee;  // for error messages: "filter 'join'", "method 'split'"
  std::vector<std::optional<Val>> positional;
  std::vector<std::pair<std::string, Val>> keyword;

  // The argument at `index` or named `name`, removing it; nullopt when absent.
  std::optional<Val> take(size_t index, std::string_view name);
  // Fails when an argument was not consumed (Python's "unexpected keyword argument").
  void done() const;
};

// JSON (a parsed messages list, a special token) as template values.
Val from_json(const Value& v, int depth = 0);

// Python's str() and repr(); an Undefined prints as "" through str().
std::string py_str(const Val& v);
std::string py_repr(const Val& v);
std::string py_float_repr(double d);
// Python's truth value.
bool truthy(const Val& v);
// Python's ==, and < for numbers, strings and lists (TypeError otherwise).
bool equals(const Val& a, const Val& b);
bool less(const Val& a, const Val& b);
// Python's type name, as error messages show it ("str", "list", "dict", "int").
std::string type_name(const Val& v);

// json.dumps(v, ensure_ascii=, indent=, separators=, sort_keys=) as transformers' `tojson`
// filter calls it. indent < 0 means None.
struct JsonOptions {
  bool ensure_ascii = false;
  int indent = -1;
  std::optional<std::string> indent_text;  // indent given as a string
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
std::string to_json(const Val& v, const JsonOptions& options);

// Python's str.isspace for one code point.
bool py_isspace(char32_t c);

// Raises the error every failed template operation raises (hfpipe::Error, InvalidArgument).
[[noreturn]] void template_error(const std::string& message);

}  // namespace hfpipe::text::jinja
