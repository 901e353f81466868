// The filters, tests, attribute/item access and methods of the Jinja subset, with the
// Python semantics jinja2 gives them. Anything outside the subset raises an error naming it
// ("chat template uses unsupported filter 'wordwrap'").
#pragma once

#include <optional>
#include <string>

#include "text/jinja_value.h"

namespace hfpipe::text::jinja {

// What builtins need from the renderer: calling a template value (a macro passed to map()).
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  virtual Val call(const Val& callee, CallArgs& args) = 0;
};

Val apply_filter(Evaluator& ev, const std::string& name, Val input, CallArgs& args);
bool apply_test(Evaluator& ev, const std::string& name, const Val& input, CallArgs& args);

// jinja2's getattr (obj.name: attribute first, then item) and getitem (obj[key]: item
// first, then attribute); a missing one is an Undefined saying what was missing.
Val get_attr(const Val& obj, const std::string& name);
Val get_item(const Val& obj, const Val& key);
// obj[start:stop:step] on a list or a string (code points), Python's rules.
Val slice(const Val& obj, std::optional<int64_t> start, std::optional<int64_t> stop, std::optional<int64_t> step);
// The items a for loop visits: a list's items, a dict's keys, a string's characters;
// nothing for an Undefined.
ValList iterate(const Val& v);
// Python's `item in container`.
bool contains(const Val& container, const Val& item);
// Python's binary arithmetic: + - * / // % ** on numbers, + on str and list, * repetition.
Val binary_op(const std::string& op, const Val& a, const Val& b);

}  // namespace hfpipe::text::jinja
