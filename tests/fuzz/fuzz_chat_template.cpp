// Fuzz target: parse and render an arbitrary chat template over a fixed conversation. The
// template must render or throw hfpipe::Error; a crash, a sanitizer report, another
// exception type or a hang (the renderer bounds loops, output and nesting) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  static const Value vars = Value::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Hi \"there\"\n\u00fc"},
                 {"role": "assistant", "content": "Hello", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1.5}}}]}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "documents": null, "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})");
  try {
    const text::jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size));
    t.render(vars);
  } catch (const Error&) {
  }
  return 0;
}
