// Chat templates: finding a model's template as transformers 4.57's tokenizer finds it and
// rendering it as `tokenizer.apply_chat_template(messages, tokenize=False, ...)` does.
//
// Where the template comes from (later sources win, as in transformers):
//   tokenizer_config.json "chat_template": a string, or a list of {"name", "template"};
//   chat_template.jinja beside it (the default template);
//   additional_chat_templates/<name>.jinja (named templates).
// (chat_template.json is a processor file; transformers' tokenizer does not read it.)
// The template sees the tokenizer's special tokens (bos_token, eos_token, unk_token,
// sep_token, pad_token, cls_token, mask_token, additional_special_tokens) as strings,
// then the caller's extra variables, messages, tools, documents and add_generation_prompt.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "hfpipe/value.h"

namespace hfpipe::text {

struct ChatTemplateOptions {
  bool add_generation_prompt = false;
  // Leave the final message open so the model continues it (transformers' semantics: the
  // rendered text is cut right after the final message's content).
  bool continue_final_message = false;
  Value tools = nullptr;      // a list of JSON schemas, or null
  Value documents = nullptr;  // a list of {"title", "text"}, or null
  // A template name ("tool_use") or a template's own text, as transformers' chat_template=.
  std::optional<std::string> chat_template;
  // Further template variables (transformers' **kwargs), e.g. {"date_string": "26 Jul 2024"};
  // they override special tokens of the same name.
  Value variables = Value::object();
};

class ChatTemplate {
 public:
  // Reads the templates and special tokens of a model folder. A folder without a template
  // loads; apply() then fails as transformers does.
  static ChatTemplate from_folder(const std::filesystem::path& dir);

  // `templates`: name -> source; a single unnamed template is stored under "".
  ChatTemplate(std::map<std::string, std::string> templates, Value special_tokens);

  // Replaces a special token's value (e.g. with the one a loaded Tokenizer resolved,
  // which includes its class defaults).
  void set_special_token(const std::string& name, const std::string& value);
  const Value& special_tokens() const { return special_tokens_; }

  // The template source apply() would use for these options.
  std::string select(const ChatTemplateOptions& options) const;

  // Renders `messages` (a JSON list of message objects).
  std::string apply(const Value& messages, const ChatTemplateOptions& options = {}) const;

 private:
  std::map<std::string, std::string> templates_;
  Value special_tokens_;
};

}  // namespace hfpipe::text
