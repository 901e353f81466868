// A Jinja subset for chat templates: renders tokenizer_config.json's `chat_template` as
// transformers' apply_chat_template renders it with jinja2 (ImmutableSandboxedEnvironment,
// trim_blocks and lstrip_blocks on, the loopcontrols extension, transformers' `tojson`,
// `raise_exception` and `strftime_now`). docs/architecture.md lists what the subset covers;
// anything outside it is an Error naming the construct, at parse time for tags and at
// evaluation time for filters, tests and methods (as jinja2 reports unknown ones).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hfpipe/value.h"

namespace hfpipe::text::jinja {

struct Program;

class Template {
 public:
  // Parses `source`; raises Error(InvalidArgument) on a syntax error or a construct
  // outside the subset, with its line and column.
  explicit Template(std::string_view source);

  // Renders with `variables` (a JSON object: messages, add_generation_prompt, bos_token,
  // ...). A template's raise_exception(msg) raises Error(InvalidArgument) whose what() is
  // exactly msg; other failures name the line and column.
  std::string render(const Value& variables) const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace hfpipe::text::jinja
