#include "cli/tokenize_command.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "hub/resolve.h"
#include "text/tokenizer.h"

namespace hfpipe::cli {

namespace {

using json = nlohmann::ordered_json;
using text::Encoding;
using text::Side;
using text::Tokenizer;

struct Args {
  std::string model;
  std::string revision = "main";
  std::optional<std::string> pair;
  std::map<std::string, json> params;
  bool jsonl = false;
  bool languages = false;  // print the language codes and their token ids instead
  std::vector<std::string> positional;
};

Args parse_args(int argc, char** argv, bool allow_pair) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string& name) -> std::string {
      if (i + 1 >= argc) fail(ErrorKind::InvalidArgument, name + " needs a value");
      return argv[++i];
    };
    if (arg == "--model") {
      a.model = value(arg);
    } else if (arg.rfind("--model=", 0) == 0) {
      a.model = arg.substr(8);
    } else if (arg == "--revision") {
      a.revision = value(arg);
    } else if (arg == "--pair" && allow_pair) {
      a.pair = value(arg);
    } else if (arg == "--param") {
      std::string kv = value(arg);
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        fail(ErrorKind::InvalidArgument, "--param expects key=JSON, got '" + kv + "'");
      std::string key = kv.substr(0, eq), raw = kv.substr(eq + 1);
      json v = json::parse(raw, nullptr, false);
      if (v.is_discarded()) v = raw;  // a bare word is taken as a string
      a.params[key] = v;
    } else if (arg == "--jsonl") {
      a.jsonl = true;
    } else if (arg == "--languages" && allow_pair) {
      a.languages = true;
    } else if (arg == "--") {
      for (++i; i < argc; ++i) a.positional.push_back(argv[i]);
    } else if (arg.size() > 1 && arg[0] == '-' && arg[1] == '-') {
      fail(ErrorKind::InvalidArgument, "unknown option '" + arg + "'");
    } else {
      a.positional.push_back(arg);
    }
  }
  if (a.model.empty()) fail(ErrorKind::InvalidArgument, "--model is required");
  return a;
}

bool as_bool(const json& v, const std::string& key) {
  if (!v.is_boolean()) fail(ErrorKind::InvalidArgument, "parameter " + key + " must be true or false");
  return v.get<bool>();
}
std::optional<size_t> as_size(const json& v, const std::string& key) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_number_integer() || v.get<long long>() < 0)
    fail(ErrorKind::InvalidArgument, "parameter " + key + " must be a non-negative integer or null");
  return size_t(v.get<long long>());
}
Side as_side(const json& v, const std::string& key) {
  if (v == "left") return Side::Left;
  if (v == "right") return Side::Right;
  fail(ErrorKind::InvalidArgument, "parameter " + key + " must be \"left\" or \"right\"");
}

// transformers' call parameters, resolved into EncodeOptions as
// PreTrainedTokenizerBase._get_padding_truncation_strategies does.
struct CallOptions {
  text::EncodeOptions encode;
  bool return_overflowing_tokens = false;
  bool return_special_tokens_mask = false;
  bool return_length = false;
  std::optional<bool> return_token_type_ids;
  std::optional<bool> return_attention_mask;
};

CallOptions resolve_options(Tokenizer& tok, const std::map<std::string, json>& params) {
  CallOptions c;
  c.encode.char_offsets = true;
  json truncation = nullptr, padding = false;
  std::optional<size_t> max_length, pad_to_multiple_of;
  size_t stride = 0;
  Side padding_side = tok.padding_side(), truncation_side = tok.truncation_side();
  for (const auto& [k, v] : params) {
    if (k == "add_special_tokens") {
      c.encode.add_special_tokens = as_bool(v, k);
    } else if (k == "truncation") {
      truncation = v;
    } else if (k == "padding") {
      padding = v;
    } else if (k == "max_length") {
      max_length = as_size(v, k);
    } else if (k == "stride") {
      stride = as_size(v, k).value_or(0);
    } else if (k == "pad_to_multiple_of") {
      pad_to_multiple_of = as_size(v, k);
    } else if (k == "return_overflowing_tokens") {
      c.return_overflowing_tokens = as_bool(v, k);
    } else if (k == "return_special_tokens_mask") {
      c.return_special_tokens_mask = as_bool(v, k);
    } else if (k == "return_length") {
      c.return_length = as_bool(v, k);
    } else if (k == "return_token_type_ids") {
      c.return_token_type_ids = as_bool(v, k);
    } else if (k == "return_attention_mask") {
      c.return_attention_mask = as_bool(v, k);
    } else if (k == "return_offsets_mapping") {
      as_bool(v, k);  // always returned
    } else if (k == "padding_side") {
      padding_side = as_side(v, k);
    } else if (k == "text_target") {
      c.encode.target = as_bool(v, k);  // the inputs are transformers' text_target
    } else if (k == "src_lang" || k == "tgt_lang") {
      if (!v.is_string()) fail(ErrorKind::InvalidArgument, "parameter " + k + " must be a language code string");
      if (k == "src_lang")
        tok.set_src_lang(v.get<std::string>());
      else
        tok.set_tgt_lang(v.get<std::string>());
    } else {
      fail(ErrorKind::InvalidArgument,
           "unknown parameter '" + k +
               "'; supported: add_special_tokens, truncation, max_length, stride, padding, pad_to_multiple_of, "
               "return_overflowing_tokens, return_special_tokens_mask, return_length, return_token_type_ids, "
               "return_attention_mask, return_offsets_mapping, padding_side, text_target, src_lang, tgt_lang");
    }
  }

  // Padding strategy.
  enum class Pad { None, Longest, MaxLength } pad = Pad::None;
  if (padding.is_boolean()) {
    pad = padding.get<bool>() ? Pad::Longest : Pad::None;
  } else if (padding == "longest") {
    pad = Pad::Longest;
  } else if (padding == "max_length") {
    pad = Pad::MaxLength;
  } else if (padding == "do_not_pad" || padding.is_null()) {
    pad = Pad::None;
  } else {
    fail(ErrorKind::InvalidArgument, "parameter padding must be true, false, \"longest\", \"max_length\" or \"do_not_pad\"");
  }
  // Truncation strategy (None = not given).
  std::optional<text::TruncationStrategy> trunc;
  bool trunc_given = !truncation.is_null();
  if (truncation.is_boolean()) {
    if (truncation.get<bool>()) trunc = text::TruncationStrategy::LongestFirst;
  } else if (truncation == "longest_first") {
    trunc = text::TruncationStrategy::LongestFirst;
  } else if (truncation == "only_first") {
    trunc = text::TruncationStrategy::OnlyFirst;
  } else if (truncation == "only_second") {
    trunc = text::TruncationStrategy::OnlySecond;
  } else if (truncation == "do_not_truncate" || truncation.is_null()) {
  } else {
    fail(ErrorKind::InvalidArgument,
         "parameter truncation must be true, false, \"longest_first\", \"only_first\", \"only_second\" or "
         "\"do_not_truncate\"");
  }
  // max_length without truncation or padding means truncation="longest_first".
  if (max_length && pad == Pad::None && !trunc_given) trunc = text::TruncationStrategy::LongestFirst;

  const int64_t kLarge = int64_t(1e15);  // transformers' LARGE_INTEGER
  int64_t model_max = tok.model_max_length();
  std::optional<size_t> pad_length;
  if (pad == Pad::MaxLength) {
    if (max_length) {
      pad_length = max_length;
    } else if (model_max < kLarge) {
      pad_length = size_t(model_max);
    } else {
      pad = Pad::None;  // no maximum length known: transformers does not pad
    }
  }
  std::optional<size_t> trunc_length = max_length;
  if (trunc && !trunc_length) {
    if (model_max < kLarge)
      trunc_length = size_t(model_max);
    else
      trunc.reset();  // no maximum length known: transformers does not truncate
  }
  if (pad != Pad::None && !tok.pad_token_id())
    fail(ErrorKind::InvalidArgument,
         "asking to pad but the tokenizer does not have a padding token (transformers raises the same)");
  if (trunc && pad != Pad::None && pad_to_multiple_of && *pad_to_multiple_of > 0 && trunc_length &&
      *trunc_length % *pad_to_multiple_of != 0)
    fail(ErrorKind::InvalidArgument, "truncation and padding are both on but max_length (" +
                                         std::to_string(*trunc_length) + ") is not a multiple of pad_to_multiple_of (" +
                                         std::to_string(*pad_to_multiple_of) + ")");
  if (trunc) {
    text::TruncationOptions t;
    t.max_length = *trunc_length;
    t.strategy = *trunc;
    t.stride = stride;
    t.direction = truncation_side;
    c.encode.truncation = t;
  }
  if (pad != Pad::None) {
    text::PaddingOptions p;
    p.length = pad == Pad::MaxLength ? pad_length : std::nullopt;
    p.pad_to_multiple_of = pad_to_multiple_of.value_or(0);
    p.direction = padding_side;
    c.encode.padding = p;
  }
  return c;
}

json offsets_json(const Encoding& e) {
  json a = json::array();
  for (const auto& [s, en] : e.offsets) a.push_back({s, en});
  return a;
}

json encoding_json(const Tokenizer& tok, const Encoding& enc, const CallOptions& c) {
  const auto& names = tok.model_input_names();
  auto named = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  bool type_ids = c.return_token_type_ids.value_or(named("token_type_ids"));
  bool attention = c.return_attention_mask.value_or(named("attention_mask"));
  std::vector<const Encoding*> encs{&enc};
  if (c.return_overflowing_tokens)
    for (const auto& o : enc.overflowing) encs.push_back(&o);
  json out = json::object();
  auto field = [&](const char* key, auto get) {
    if (!c.return_overflowing_tokens) {
      out[key] = get(*encs[0]);
      return;
    }
    json a = json::array();
    for (const auto* e : encs) a.push_back(get(*e));
    out[key] = a;
  };
  field("input_ids", [](const Encoding& e) { return json(e.ids); });
  if (type_ids) field("token_type_ids", [](const Encoding& e) { return json(e.type_ids); });
  if (attention) field("attention_mask", [](const Encoding& e) { return json(e.attention_mask); });
  if (c.return_special_tokens_mask)
    field("special_tokens_mask", [](const Encoding& e) { return json(e.special_tokens_mask); });
  field("offset_mapping", [](const Encoding& e) { return offsets_json(e); });
  if (c.return_length) field("length", [](const Encoding& e) { return json(e.ids.size()); });
  field("tokens", [](const Encoding& e) { return json(e.tokens); });
  if (c.return_overflowing_tokens) out["overflow_to_sample_mapping"] = std::vector<int>(encs.size(), 0);
  return out;
}

json encode_one(const Tokenizer& tok, const std::string& text, const std::optional<std::string>& pair,
                const CallOptions& c) {
  std::vector<std::string> texts{text}, pairs;
  if (pair) pairs.push_back(*pair);
  auto encs = tok.encode_batch(texts, pairs, c.encode);
  return encoding_json(tok, encs[0], c);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Tokenizer load(const Args& a) { return Tokenizer::from_folder(hub::resolve_model(a.model, a.revision)); }

int report(const std::exception& e) {
  std::fprintf(stderr, "hfpipe: error: %s\n", e.what());
  return 1;
}

}  // namespace

int tokenize_main(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv, true);
    if (a.jsonl && (!a.positional.empty() || a.pair))
      fail(ErrorKind::InvalidArgument, "--jsonl reads its inputs from stdin; do not also pass TEXT or --pair");
    if (!a.jsonl && !a.languages && a.positional.size() != 1)
      fail(ErrorKind::InvalidArgument, "expected exactly one TEXT argument (or --jsonl); quote text with spaces");
    Tokenizer tok = load(a);
    CallOptions c = resolve_options(tok, a.params);
    if (a.languages) {
      // {"src_lang": ..., "tgt_lang": ..., "codes": {code: token id}} (lang_code_to_id).
      json codes = json::object();
      for (const auto& code : tok.language_codes()) codes[code] = tok.language_token_id(code);
      json out = {{"src_lang", tok.src_lang() ? json(*tok.src_lang()) : json(nullptr)},
                  {"tgt_lang", tok.tgt_lang() ? json(*tok.tgt_lang()) : json(nullptr)},
                  {"codes", codes}};
      std::cout << dump(out) << "\n";
      return 0;
    }
    if (!a.jsonl) {
      std::cout << dump(encode_one(tok, a.positional[0], a.pair, c)) << "\n";
      return 0;
    }
    std::ios::sync_with_stdio(false);
    int status = 0;
    std::string line;
    size_t n = 0;
    while (std::getline(std::cin, line)) {
      ++n;
      if (line.empty() || line == "\r") continue;
      try {
        json v = json::parse(line);
        std::string text;
        std::optional<std::string> pair;
        if (v.is_string()) {
          text = v.get<std::string>();
        } else if (v.is_object() && v.contains("text") && v["text"].is_string()) {
          text = v["text"].get<std::string>();
          if (v.contains("text_pair") && !v["text_pair"].is_null()) {
            if (!v["text_pair"].is_string()) fail(ErrorKind::InvalidArgument, "text_pair must be a string");
            pair = v["text_pair"].get<std::string>();
            if (pair->empty()) pair.reset();  // transformers: an empty text_pair is no pair (`if text_pair`)
          }
        } else {
          fail(ErrorKind::InvalidArgument, "expected a JSON string or {\"text\": ..., \"text_pair\": ...}");
        }
        std::cout << dump(encode_one(tok, text, pair, c)) << "\n";
      } catch (const std::exception& e) {
        std::cout << dump(json{{"error", e.what()}}) << "\n";
        std::fprintf(stderr, "hfpipe: error: line %zu: %s\n", n, e.what());
        status = 1;
      }
    }
    std::cout.flush();
    return status;
  } catch (const std::exception& e) {
    return report(e);
  }
}

int detokenize_main(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv, false);
    Tokenizer tok = load(a);
    bool skip = false, cleanup = tok.clean_up_tokenization_spaces();
    for (const auto& [k, v] : a.params) {
      if (k == "skip_special_tokens")
        skip = as_bool(v, k);
      else if (k == "clean_up_tokenization_spaces")
        cleanup = v.is_null() ? tok.clean_up_tokenization_spaces() : as_bool(v, k);
      else
        fail(ErrorKind::InvalidArgument,
             "unknown parameter '" + k + "'; supported: skip_special_tokens, clean_up_tokenization_spaces");
    }
    auto ids_of = [](json v) {
      std::vector<int32_t> ids;
      if (v.is_number_integer()) v = json::array({v});
      if (!v.is_array()) fail(ErrorKind::InvalidArgument, "expected a JSON array of token ids");
      for (const auto& x : v) {
        if (!x.is_number_integer()) fail(ErrorKind::InvalidArgument, "token ids must be integers");
        long long id = x.get<long long>();
        if (id < 0 || id > INT32_MAX) fail(ErrorKind::InvalidArgument, "token id " + std::to_string(id) + " is out of range");
        ids.push_back(int32_t(id));
      }
      return ids;
    };
    if (!a.jsonl) {
      if (a.positional.size() != 1) fail(ErrorKind::InvalidArgument, "expected one IDS_JSON argument, e.g. '[101, 7592, 102]'");
      json v = json::parse(a.positional[0], nullptr, false);
      if (v.is_discarded()) fail(ErrorKind::InvalidArgument, "IDS_JSON is not valid JSON");
      std::cout << dump(json(tok.decode(ids_of(v), skip, cleanup))) << "\n";
      return 0;
    }
    int status = 0;
    std::string line;
    size_t n = 0;
    while (std::getline(std::cin, line)) {
      ++n;
      if (line.empty()) continue;
      try {
        json v = json::parse(line);
        std::cout << dump(json(tok.decode(ids_of(v), skip, cleanup))) << "\n";
      } catch (const std::exception& e) {
        std::cout << dump(json{{"error", e.what()}}) << "\n";
        std::fprintf(stderr, "hfpipe: error: line %zu: %s\n", n, e.what());
        status = 1;
      }
    }
    return status;
  } catch (const std::exception& e) {
    return report(e);
  }
}

}  // namespace hfpipe::cli
