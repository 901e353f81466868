#include "cli/chat_template_command.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <string>

#include "core/error.h"
#include "hub/resolve.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hfpipe::cli {

namespace {

struct ChatArgs {
  std::string model, revision = "main", messages;
  Value params = Value::object();
  bool json = false;
};

ChatArgs parse_chat_args(int argc, char** argv) {
  ChatArgs a;
  bool have_messages = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(ErrorKind::InvalidArgument, arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--model") a.model = value();
    else if (arg == "--revision") a.revision = value();
    else if (arg == "--json") a.json = true;
    else if (arg == "--param") {
      const std::string kv = value();
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) fail(ErrorKind::InvalidArgument, "--param expects key=JSON, got '" + kv + "'");
      Value v = Value::parse(kv.substr(eq + 1), nullptr, /*allow_exceptions=*/false);
      a.params[kv.substr(0, eq)] = v.is_discarded() ? Value(kv.substr(eq + 1)) : v;  // a bare word is a string
    } else if (arg.size() > 2 && arg.rfind("--", 0) == 0) {
      fail(ErrorKind::InvalidArgument, "unknown option '" + arg + "'");
    } else if (!have_messages) {
      a.messages = arg, have_messages = true;
    } else {
      fail(ErrorKind::InvalidArgument, "expected one MESSAGES_JSON argument, got another: '" + arg + "'");
    }
  }
  if (a.model.empty()) fail(ErrorKind::InvalidArgument, "--model is required");
  if (!have_messages) fail(ErrorKind::InvalidArgument, "no MESSAGES_JSON given (a JSON list of messages, or - for stdin)");
  return a;
}

bool as_flag(const Value& v, const std::string& key) {
  if (!v.is_boolean()) fail(ErrorKind::InvalidArgument, "parameter " + key + " must be true or false");
  return v.get<bool>();
}

text::ChatTemplateOptions options_from(const Value& params) {
  text::ChatTemplateOptions o;
  for (auto it = params.begin(); it != params.end(); ++it) {
    const std::string& k = it.key();
    if (k == "add_generation_prompt") o.add_generation_prompt = as_flag(it.value(), k);
    else if (k == "continue_final_message") o.continue_final_message = as_flag(it.value(), k);
    else if (k == "tools") o.tools = it.value();
    else if (k == "documents") o.documents = it.value();
    else if (k == "chat_template" && it.value().is_string()) o.chat_template = it.value().get<std::string>();
    else if (k == "tokenize" && it.value() != false) fail(ErrorKind::InvalidArgument, "chat-template prints text: tokenize must be false");
    else if (k != "tokenize") o.variables[k] = it.value();
  }
  return o;
}

// The template sees the tokenizer's special tokens; when the folder has a tokenizer the
// engine loads, its resolved values (which include the tokenizer class's defaults) win.
text::ChatTemplate load_template(const std::filesystem::path& dir) {
  text::ChatTemplate chat = text::ChatTemplate::from_folder(dir);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir / "tokenizer.json", ec)) return chat;
  const text::Tokenizer tok = text::Tokenizer::from_folder(dir);
  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    chat.set_special_token(name, tok.special_token(name).value_or(""));
  return chat;
}

}  // namespace

int chat_template_main(int argc, char** argv) {
  try {
    const ChatArgs a = parse_chat_args(argc, argv);
    std::string text = a.messages;
    if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    const Value messages = Value::parse(text, nullptr, /*allow_exceptions=*/false);
    if (messages.is_discarded()) fail(ErrorKind::InvalidArgument, "MESSAGES_JSON is not valid JSON (or not valid UTF-8)");
    const text::ChatTemplate chat = load_template(hub::resolve_model(a.model, a.revision));
    const std::string rendered = chat.apply(messages, options_from(a.params));
    if (a.json) std::cout << Value(rendered).dump(-1, ' ', false, Value::error_handler_t::replace) << '\n';
    else std::cout << rendered;
    std::cout.flush();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hfpipe: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace hfpipe::cli
