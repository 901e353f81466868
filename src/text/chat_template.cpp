#include "text/chat_template.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "formats/json_depth.h"
#include "text/jinja.h"

namespace hfpipe::text {

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(ErrorKind::Io, "cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<Value> read_json_object(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  const std::string text = read_text(p);
  formats::check_json_depth(text, p.string());
  Value v = Value::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded() || !v.is_object()) fail(ErrorKind::CorruptFile, p.string() + ": expected a JSON object");
  return v;
}

const char* const kSpecialNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                     "pad_token", "cls_token", "mask_token"};

// A special token as a string: a plain string or a serialised AddedToken {"content": ...}.
std::optional<std::string> token_text(const Value& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// transformers' special_tokens_map: tokenizer_config.json's special tokens, overridden by
// special_tokens_map.json's when the config has no added_tokens_decoder (its legacy path);
// additional_special_tokens from both, without repeats. Empty values are left out.
Value read_special_tokens(const std::optional<Value>& cfg, const std::optional<Value>& stm) {
  std::map<std::string, std::string> single;
  std::vector<std::string> additional;
  auto merge = [&](const Value& src) {
    for (const char* name : kSpecialNames) {
      if (!src.contains(name)) continue;
      if (auto t = token_text(src[name])) single[name] = *t;
      else single.erase(name);
    }
    if (src.contains("additional_special_tokens") && src["additional_special_tokens"].is_array())
      for (const auto& v : src["additional_special_tokens"])
        if (auto t = token_text(v); t && std::find(additional.begin(), additional.end(), *t) == additional.end())
          additional.push_back(*t);
  };
  if (cfg) merge(*cfg);
  if (stm && !(cfg && cfg->contains("added_tokens_decoder"))) merge(*stm);
  Value out = Value::object();
  for (const char* name : kSpecialNames)
    if (single.count(name) && !single[name].empty()) out[name] = single[name];
  if (!additional.empty()) out["additional_special_tokens"] = additional;
  return out;
}

std::map<std::string, std::string> read_templates(const fs::path& dir, const std::optional<Value>& cfg) {
  std::map<std::string, std::string> templates;
  const std::string where = (dir / "tokenizer_config.json").string();
  if (cfg && cfg->contains("chat_template") && !(*cfg)["chat_template"].is_null()) {
    const Value& t = (*cfg)["chat_template"];
    if (t.is_string()) {
      templates[""] = t.get<std::string>();
    } else if (t.is_array()) {
      for (const auto& e : t) {
        if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
            !e["template"].is_string())
          fail(ErrorKind::CorruptFile, where + ": chat_template entries must be {\"name\": ..., \"template\": ...}");
        templates[e["name"].get<std::string>()] = e["template"].get<std::string>();
      }
    } else {
      fail(ErrorKind::CorruptFile, where + ": chat_template must be a string or a list of {name, template}");
    }
  }
  // Template files take priority over the config's entries (all of them, as transformers
  // replaces the config's chat_template wholesale).
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (fs::is_regular_file(dir / "chat_template.jinja", ec)) files["default"] = read_text(dir / "chat_template.jinja");
  const fs::path extra = dir / "additional_chat_templates";
  if (fs::is_directory(extra, ec))
    for (const auto& entry : fs::directory_iterator(extra))
      if (entry.is_regular_file() && entry.path().extension() == ".jinja")
        files[entry.path().stem().string()] = read_text(entry.path());
  if (files.size() == 1 && files.count("default")) return {{"", files["default"]}};
  if (!files.empty()) return files;
  return templates;
}

}  // namespace

ChatTemplate ChatTemplate::from_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(ErrorKind::NotFound, "model folder " + dir.string() + " does not exist");
  auto cfg = read_json_object(dir / "tokenizer_config.json");
  auto stm = read_json_object(dir / "special_tokens_map.json");
  return ChatTemplate(read_templates(dir, cfg), read_special_tokens(cfg, stm));
}

ChatTemplate::ChatTemplate(std::map<std::string, std::string> templates, Value special_tokens)
    : templates_(std::move(templates)), special_tokens_(std::move(special_tokens)) {
  if (!special_tokens_.is_object()) special_tokens_ = Value::object();
}

void ChatTemplate::set_special_token(const std::string& name, const std::string& value) {
  if (value.empty()) special_tokens_.erase(name);
  else special_tokens_[name] = value;
}

// transformers' get_chat_template().
std::string ChatTemplate::select(const ChatTemplateOptions& o) const {
  const bool named = !(templates_.size() == 1 && templates_.count(""));
  if (named && !templates_.empty()) {
    if (o.chat_template && templates_.count(*o.chat_template)) return templates_.at(*o.chat_template);
    if (o.chat_template) return *o.chat_template;
    if (!o.tools.is_null() && templates_.count("tool_use")) return templates_.at("tool_use");
    if (templates_.count("default")) return templates_.at("default");
    std::string names;
    for (const auto& [k, v] : templates_) names += (names.empty() ? "'" : ", '") + k + "'";
    fail(ErrorKind::InvalidArgument,
         "This model has multiple chat templates with no default specified! Please either pass a chat template or "
         "the name of the template you wish to use to the `chat_template` argument. Available template names are [" +
             names + "].");
  }
  if (o.chat_template) return *o.chat_template;
  if (templates_.empty())
    fail(ErrorKind::InvalidArgument,
         "Cannot use chat template functions because tokenizer.chat_template is not set and no template argument was "
         "passed! For information about writing templates and setting the tokenizer.chat_template attribute, please "
         "see the documentation at https://huggingface.co/docs/transformers/main/en/chat_templating");
  return templates_.begin()->second;
}

namespace {

const char* const kContinueTag = "CONTINUE_FINAL_MESSAGE_TAG ";

// Appends the continue tag to the final message's text (its content string, or the last
// content block with a "text"), returning that text as it was.
std::string tag_final_message(Value& messages) {
  Value& content = messages.back()["content"];
  if (content.is_string()) {
    std::string before = content.get<std::string>();
    content = before + kContinueTag;
    return before;
  }
  if (content.is_array())
    for (auto it = content.rbegin(); it != content.rend(); ++it)
      if (it->is_object() && it->contains("text") && (*it)["text"].is_string()) {
        std::string before = (*it)["text"].get<std::string>();
        (*it)["text"] = before + kContinueTag;
        return before;
      }
  fail(ErrorKind::InvalidArgument,
       "continue_final_message is set but we could not find any text to continue in the final message!");
}

std::string strip_copy(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string ChatTemplate::apply(const Value& messages, const ChatTemplateOptions& o) const {
  if (!messages.is_array() || messages.empty())
    fail(ErrorKind::InvalidArgument, "messages must be a non-empty JSON list of message objects");
  if (o.continue_final_message && o.add_generation_prompt)
    fail(ErrorKind::InvalidArgument,
         "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you "
         "want the model to continue the final message, and add_generation_prompt when you want to add a header "
         "that will prompt it to start a new assistant message instead.");
  if (!o.variables.is_object()) fail(ErrorKind::InvalidArgument, "chat template variables must be a JSON object");
  const jinja::Template tmpl(select(o));

  Value chat = messages;
  std::string final_text;
  if (o.continue_final_message) {
    if (!chat.back().is_object()) fail(ErrorKind::InvalidArgument, "the final message must be an object");
    final_text = tag_final_message(chat);
  }
  Value vars = special_tokens_;
  for (auto it = o.variables.begin(); it != o.variables.end(); ++it) vars[it.key()] = it.value();
  vars["messages"] = chat;
  vars["tools"] = o.tools;
  vars["documents"] = o.documents;
  vars["add_generation_prompt"] = o.add_generation_prompt;
  std::string rendered = tmpl.render(vars);

  if (o.continue_final_message) {
    const std::string tag = strip_copy(kContinueTag);
    if (rendered.find(strip_copy(final_text)) == std::string::npos || rendered.find(tag) == std::string::npos)
      fail(ErrorKind::InvalidArgument,
           "continue_final_message is set but the final message does not appear in the chat after applying the chat "
           "template! This can happen if the chat template deletes portions of the final message. Please verify the "
           "chat template and final message in your chat to ensure they are compatible.");
    const size_t at = rendered.rfind(tag);
    if (rendered.compare(at, std::string(kContinueTag).size(), kContinueTag) == 0) {
      rendered.resize(at);
    } else {
      rendered.resize(at);
      while (!rendered.empty() && std::isspace(static_cast<unsigned char>(rendered.back()))) rendered.pop_back();
    }
  }
  return rendered;
}

}  // namespace hfpipe::text
