// Decoders: WordPiece, ByteLevel, BPEDecoder, Fuse, Strip, Replace, ByteFallback,
// Metaspace, CTC, Sequence.
#include <cctype>
#include <memory>

#include "text/components.h"
#include "text/json_util.h"
#include "text/regex.h"

namespace hfpipe::text {

void parse_pattern(const JsonValue& v, const std::string& where, std::string* literal, std::unique_ptr<Regex>* regex);

namespace u = unicode;

std::string Decoder::decode(std::vector<std::string> tokens) const {
  std::string out;
  for (const auto& t : decode_chain(std::move(tokens))) out += t;
  return out;
}

namespace {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// tokenizers' WordPiece cleanup (a superset of transformers' clean_up_tokenization).
std::string cleanup(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},    {" ?", "?"},       {" !", "!"},           {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"},  {" do not", " don't"}, {" 's", "'s"},      {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [a, b] : kRules) s = replace_all(std::move(s), a, b);
  return s;
}

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0)
          t.erase(0, prefix_.size());
        else
          t.insert(0, " ");
      }
      if (cleanup_) t = cleanup(std::move(t));
    }
    return tokens;
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class ByteLevelDecoder final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      std::string mapped;
      bool ok = true;
      for (size_t i = 0; i < t.size();) {
        size_t len;
        char32_t c = u::decode(t, i, &len);
        i += len;
        auto b = char_to_byte(c);
        if (!b) {
          ok = false;
          break;
        }
        mapped.push_back(char(*b));
      }
      bytes += ok ? mapped : t;
    }
    return {u::from_utf8_lossy(bytes)};
  }
};

class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(std::move(tokens[i]), suffix_, i + 1 == tokens.size() ? "" : " ");
    return tokens;
  }

 private:
  std::string suffix_;
};

class FuseDecoder final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::string s;
    for (const auto& t : tokens) s += t;
    return {s};
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) {
      std::u32string chars = u::decode_all(t);
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size(); ++i) {
        if (chars[i] == content_)
          start_cut = i + 1;
        else
          break;
      }
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        size_t idx = chars.size() - 1 - i;
        if (chars[idx] == content_)
          stop_cut = idx;
        else
          break;
      }
      std::string out;
      for (size_t i = start_cut; i < stop_cut; ++i) u::append(out, chars[i]);
      t = std::move(out);
    }
    return tokens;
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) {
      Matches m = regex_ ? regex_->find_matches(t) : find_literal_matches(t, literal_);
      std::string out;
      for (const auto& [o, is_match] : m) out += is_match ? content_ : t.substr(o.first, o.second - o.first);
      t = std::move(out);
    }
    return tokens;
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (!u::first_invalid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
          std::isxdigit(static_cast<unsigned char>(t[4]))) {
        pending.push_back(char(std::stoi(t.substr(3, 2), nullptr, 16)));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    return out;
  }
};

// Metaspace: the replacement character back to spaces; in the first token (unless the
// scheme is "never") every replacement character is dropped, as `tokenizers` does.
class MetaspaceDecoder final : public Decoder {
 public:
  explicit MetaspaceDecoder(MetaspaceOptions o) : o_(std::move(o)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(std::move(tokens[i]), o_.replacement,
                              i == 0 && o_.prepend_scheme != PrependScheme::Never ? "" : " ");
    return tokens;
  }

 private:
  MetaspaceOptions o_;
};

// CTC: repeated tokens collapse, the pad token disappears, the word delimiter becomes a space.
class CtcDecoder final : public Decoder {
 public:
  CtcDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;
      std::string t = replace_all(tokens[i], pad_, "");
      if (cleanup_) t = replace_all(cleanup(std::move(t)), delimiter_, " ");
      if (!t.empty()) out.push_back(std::move(t));
    }
    return out;
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  std::vector<std::string> decode_chain(std::vector<std::string> tokens) const override {
    for (const auto& d : items_) tokens = d->decode_chain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

std::unique_ptr<Decoder> make_wordpiece_decoder(std::string prefix, bool cleanup) {
  return std::make_unique<WordPieceDecoder>(std::move(prefix), cleanup);
}
std::unique_ptr<Decoder> make_byte_level_decoder() { return std::make_unique<ByteLevelDecoder>(); }
std::unique_ptr<Decoder> make_metaspace_decoder(const MetaspaceOptions& o) { return std::make_unique<MetaspaceDecoder>(o); }
std::unique_ptr<Decoder> make_byte_fallback_decoder() { return std::make_unique<ByteFallbackDecoder>(); }
std::unique_ptr<Decoder> make_fuse_decoder() { return std::make_unique<FuseDecoder>(); }
std::unique_ptr<Decoder> make_strip_decoder(char32_t content, size_t start, size_t stop) {
  return std::make_unique<StripDecoder>(content, start, stop);
}
std::unique_ptr<Decoder> make_replace_decoder(std::string literal, std::string content) {
  return std::make_unique<ReplaceDecoder>(std::move(literal), nullptr, std::move(content));
}
std::unique_ptr<Decoder> make_sequence_decoder(std::vector<std::unique_ptr<Decoder>> items) {
  return std::make_unique<SequenceDecoder>(std::move(items));
}

std::unique_ptr<Decoder> make_decoder(const JsonValue& v, const std::string& where) {
  std::string type = json::type_of(v, where);
  if (type == "WordPiece")
    return make_wordpiece_decoder(json::get_string(v, "prefix", "##", where), json::get_bool(v, "cleanup", true, where));
  if (type == "ByteLevel") return make_byte_level_decoder();
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(json::get_string(v, "suffix", "</w>", where));
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    std::string content = json::get_string(v, "content", " ", where);
    std::u32string c = u::decode_all(content);
    if (c.size() != 1) json::corrupt(where + ".content", "expected a single character");
    return std::make_unique<StripDecoder>(c[0], json::get_count(v, "start", 0, where),
                                          json::get_count(v, "stop", 0, where));
  }
  if (type == "Replace") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    parse_pattern(json::required(v, "pattern", where), where + ".pattern", &literal, &regex);
    return std::make_unique<ReplaceDecoder>(std::move(literal), std::move(regex),
                                            json::require_string(v, "content", where));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Metaspace") return make_metaspace_decoder(parse_metaspace(v, where));
  if (type == "CTC")
    return std::make_unique<CtcDecoder>(json::get_string(v, "pad_token", "<pad>", where),
                                        json::get_string(v, "word_delimiter_token", "|", where),
                                        json::get_bool(v, "cleanup", true, where));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> items;
    size_t i = 0;
    for (auto e : json::as_array(json::required(v, "decoders", where), where + ".decoders"))
      items.push_back(make_decoder(e, where + ".decoders[" + std::to_string(i++) + "]"));
    return std::make_unique<SequenceDecoder>(std::move(items));
  }
  fail(ErrorKind::UnsupportedModel,
       where + ": decoder type '" + type +
           "' is not supported; supported: WordPiece, ByteLevel, BPEDecoder, Fuse, Strip, Replace, ByteFallback, "
           "Metaspace, CTC, Sequence");
}

}  // namespace hfpipe::text
