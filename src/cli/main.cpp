// The hfpipe command line:
//   hfpipe TASK --model M [--revision R] [--batch-size N] [--threads N] [--param key=JSON]...
//               [--jsonl | --input-json JSON] [--stream] [INPUT...]
// prints transformers' pipeline output as JSON: one document for one input, a list for
// several, and one line per stdin line with --jsonl. --input-json passes one JSON value as the
// call's input, pipe(VALUE): a chat, a list of chats, a list of prompts. Failures print one line on stderr and
// exit non-zero (1 for errors, 2 for usage).
// --stream (text-generation) prints the new text as it is generated, flushed piece by piece:
// raw text and a newline per INPUT, or with --jsonl a {"chunk": TEXT} line per piece and then
// the input's usual result line.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cli/chat_template_command.h"
#include "cli/inspect_command.h"
#include "cli/logits_command.h"
#include "cli/tokenize_command.h"
#include "core/json_dump.h"
#include "hfpipe/hfpipe.h"

namespace {

using hfpipe::to_json;

constexpr const char* kUsage =
    "usage: hfpipe TASK --model M [--revision R] [--batch-size N] [--threads N]\n"
    "              [--param key=JSON]... [--jsonl | --input-json JSON] [--stream] [INPUT...]\n"
    "       hfpipe tokenize --model M [--pair TEXT] [--param key=JSON]... [--jsonl] [--languages] [TEXT]\n"
    "       hfpipe detokenize --model M [--param key=JSON]... IDS_JSON\n"
    "       hfpipe chat-template --model M [--param key=JSON]... [--json] MESSAGES_JSON\n"
    "       hfpipe inspect-weights PATH\n"
    "       hfpipe logits --model M [--step N] [--attn-implementation sdpa|eager] IDS_JSON\n"
    "       hfpipe --help | --version\n"
    "TASK: text-classification (sentiment-analysis), feature-extraction, token-classification (ner),\n"
    "      fill-mask, question-answering, zero-shot-classification, text-generation,\n"
    "      text2text-generation, summarization, translation (translation_XX_to_YY)\n"
    "--param passes any pipeline parameter as transformers' keyword arguments, the value as JSON\n"
    "(e.g. --param top_k=null); a value that is not JSON is taken as a string.\n"
    "--jsonl reads one JSON input per stdin line and prints one JSON result per line.\n"
    "--input-json JSON calls the pipeline on one JSON value (e.g. a chat: a list of messages).\n"
    "--stream (text-generation) prints the new text as it is generated: raw text per INPUT, or\n"
    "with --jsonl one {\"chunk\": TEXT} line per piece before each result line.\n"
    "question-answering takes {\"question\", \"context\"} objects with --jsonl, or no INPUT and\n"
    "--param question=... --param context=... (strings, or a list of questions).\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CliArgs {
  std::string task;
  hfpipe::PipelineOptions options;
  bool jsonl = false;
  bool stream = false;
  std::optional<hfpipe::Value> input_json;
  std::vector<std::string> inputs;
};

int parse_positive(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    int value = std::stoi(text, &used);
    if (used == text.size() && value >= 0) return value;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " takes a non-negative integer, got '" + text + "'");
}

void add_param(hfpipe::Value& params, const std::string& spec) {
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) throw UsageError("--param takes key=JSON, got '" + spec + "'");
  const std::string key = spec.substr(0, eq), text = spec.substr(eq + 1);
  hfpipe::Value value = hfpipe::Value::parse(text, nullptr, /*allow_exceptions=*/false);
  params[key] = value.is_discarded() ? hfpipe::Value(text) : value;
}

CliArgs parse_args(int argc, char** argv) {
  CliArgs args;
  auto value_of = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw UsageError(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model") args.options.model = value_of(i);
    else if (a == "--revision") args.options.revision = value_of(i);
    else if (a == "--batch-size") args.options.batch_size = parse_positive(a, value_of(i));
    else if (a == "--threads") args.options.threads = parse_positive(a, value_of(i));
    else if (a == "--param") add_param(args.options.params, value_of(i));
    else if (a == "--jsonl") args.jsonl = true;
    else if (a == "--stream") args.stream = true;
    else if (a == "--input-json") {
      const std::string text = value_of(i);
      hfpipe::Value v = hfpipe::Value::parse(text, nullptr, /*allow_exceptions=*/false);
      if (v.is_discarded()) throw UsageError("--input-json takes a JSON value (valid UTF-8), got '" + text + "'");
      args.input_json = std::move(v);
    }
    else if (a == "--") {
      for (++i; i < argc; ++i) args.inputs.push_back(argv[i]);
    } else if (a.size() > 2 && a.rfind("--", 0) == 0) throw UsageError("unknown option " + a);
    else if (args.task.empty()) args.task = a;
    else args.inputs.push_back(a);
  }
  if (args.task.empty()) throw UsageError("no task given");
  if (args.options.model.empty()) throw UsageError("no model given (--model)");
  if (args.jsonl && !args.inputs.empty()) throw UsageError("--jsonl reads inputs from stdin; do not also pass INPUT arguments");
  if (args.input_json && (args.jsonl || !args.inputs.empty()))
    throw UsageError("--input-json is the one input; do not also pass INPUT arguments or --jsonl");
  // question-answering's question=/context= parameters are its inputs.
  const bool inputs_in_params = args.options.params.contains("question");
  if (!args.jsonl && args.inputs.empty() && !inputs_in_params && !args.input_json)
    throw UsageError("no input given (pass INPUT arguments or --jsonl)");
  return args;
}

// Reads --jsonl input a window of lines at a time, numbering lines for error messages.
class JsonlReader {
 public:
  explicit JsonlReader(std::istream& in) : in_(in) {}

  // Up to max_items inputs (blank lines skipped); empty at the end of the input.
  std::vector<hfpipe::Value> next(size_t max_items) {
    std::vector<hfpipe::Value> items;
    std::string line;
    while (items.size() < max_items && std::getline(in_, line)) {
      ++line_number_;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      hfpipe::Value v = hfpipe::Value::parse(line, nullptr, /*allow_exceptions=*/false);
      if (v.is_discarded())
        throw hfpipe::Error(hfpipe::ErrorKind::InvalidArgument,
                            "stdin line " + std::to_string(line_number_) + " is not valid JSON (or not valid UTF-8)");
      items.push_back(std::move(v));
    }
    return items;
  }

 private:
  std::istream& in_;
  size_t line_number_ = 0;
};

std::vector<hfpipe::Value> read_jsonl(std::istream& in) {
  return JsonlReader(in).next(std::numeric_limits<size_t>::max());
}

// --jsonl runs the pipeline over windows of this many inputs (each length-sorted into batches)
// and prints a window's results before reading the next: holding every result of a long input
// until the end cost feature-extraction ~200 MB for 256 inputs of 128 tokens (its token
// embeddings as JSON values), beyond the weights + 100 MB budget.
size_t jsonl_window(int batch_size) { return std::max<size_t>(64, 2 * static_cast<size_t>(batch_size)); }

// --stream: each input's text piece by piece, flushed as it arrives.
int run_streaming(const hfpipe::Pipeline& pipe, const CliArgs& args) {
  if (args.jsonl) {
    for (const auto& item : read_jsonl(std::cin)) {
      const hfpipe::Value result = pipe.stream(item, [](std::string_view text) {
        std::cout << to_json(hfpipe::Value{{"chunk", std::string(text)}}) << '\n' << std::flush;
      });
      std::cout << to_json(result) << '\n' << std::flush;
    }
    return 0;
  }
  std::vector<hfpipe::Value> inputs(args.inputs.begin(), args.inputs.end());
  if (args.input_json) inputs = {*args.input_json};
  for (const auto& input : inputs) {
    pipe.stream(input, [](std::string_view text) { std::cout << text << std::flush; });
    std::cout << '\n' << std::flush;
  }
  return 0;
}

// Prints a result as one JSON line, then empties it (hfpipe::release: cheaper than its
// destructor). The text buffer is reused: a fresh megabyte-sized string per result (token
// embeddings) costs page faults every time.
void print_result(hfpipe::Value& result) {
  static std::string text;
  text.clear();
  hfpipe::append_json(result, text);
  text += '\n';
  std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
  hfpipe::release(result);
}

hfpipe::Value call_without_jsonl(const hfpipe::Pipeline& pipe, const CliArgs& args) {
  if (args.input_json) return pipe(*args.input_json);
  if (args.inputs.empty()) return pipe(hfpipe::Value());
  if (args.inputs.size() == 1) return pipe(hfpipe::Value(args.inputs.front()));
  hfpipe::Value list = hfpipe::Value::array();
  for (const auto& input : args.inputs) list.push_back(input);
  return pipe(list);
}

int run_task(const CliArgs& args) {
  auto pipe = hfpipe::pipeline(args.task, args.options);
  if (args.stream) return run_streaming(pipe, args);
  if (args.jsonl) {
    JsonlReader reader(std::cin);
    const size_t window_size = jsonl_window(args.options.batch_size);
    for (auto window = reader.next(window_size); !window.empty(); window = reader.next(window_size))
      for (auto& result : pipe.each(window)) print_result(result);
  } else {
    hfpipe::Value result = call_without_jsonl(pipe, args);
    print_result(result);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::cout << kUsage;
    return 0;
  }
  if (argc >= 2 && !std::strcmp(argv[1], "--version")) {
    std::cout << "hfpipe 0.1.0\n";
    return 0;
  }
  // Tool subcommands take the rest of the command line as their own.
  if (argc >= 2 && !std::strcmp(argv[1], "tokenize")) return hfpipe::cli::tokenize_main(argc - 1, argv + 1);
  if (argc >= 2 && !std::strcmp(argv[1], "detokenize")) return hfpipe::cli::detokenize_main(argc - 1, argv + 1);
  if (argc >= 2 && !std::strcmp(argv[1], "chat-template")) return hfpipe::cli::chat_template_main(argc - 1, argv + 1);
  if (argc >= 2 && !std::strcmp(argv[1], "inspect-weights")) return hfpipe::cli::inspect_weights_main(argc - 1, argv + 1);
  if (argc >= 2 && !std::strcmp(argv[1], "logits")) return hfpipe::cli::logits_main(argc - 1, argv + 1);
  try {
    return run_task(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "hfpipe: error: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const hfpipe::Error& e) {
    std::cerr << "hfpipe: error: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "hfpipe: error: internal: " << e.what() << '\n';
    return 1;
  }
}
