// Models: WordPiece (greedy longest-match-first) and WordLevel.
#include <memory>

#include "text/components.h"
#include "text/json_util.h"
#include "text/vocab_map.h"

namespace hfpipe::text {

namespace {

class WordPiece final : public Model {
 public:
  WordPiece(VocabTable vocab, std::string unk, std::string prefix, size_t max_chars)
      : vocab_(std::move(vocab)), unk_(std::move(unk)), prefix_(std::move(prefix)), max_chars_(max_chars) {}

  void tokenize(std::string_view seq, std::vector<Token>& out) const override {
    size_t n_chars = unicode::count_chars(seq);
    if (n_chars > max_chars_) {
      out.push_back(unk_token(seq.size()));
      return;
    }
    size_t first = out.size();
    std::string buf;
    size_t max_len = vocab_.max_token_bytes();
    size_t start = 0;
    while (start < seq.size()) {
      size_t end = seq.size();
      // No vocabulary entry is longer than max_len bytes: start the search there.
      size_t limit = start + max_len + 1;
      if (end > limit) {
        end = limit;
        while (end > start && (static_cast<unsigned char>(seq[end]) & 0xC0) == 0x80) --end;
      }
      const uint32_t* found = nullptr;
      while (start < end) {
        std::string_view sub = seq.substr(start, end - start);
        if (start > 0) {
          buf.assign(prefix_);
          buf.append(sub);
          found = vocab_.find(buf);
        } else {
          found = vocab_.find(sub);
        }
        if (found) break;
        // Drop the last character.
        size_t e = end - 1;
        while (e > start && (static_cast<unsigned char>(seq[e]) & 0xC0) == 0x80) --e;
        end = e;
      }
      if (!found) {
        out.resize(first);
        out.push_back(unk_token(seq.size()));
        return;
      }
      out.push_back(Token{*found, start > 0 ? buf : std::string(seq.substr(start, end - start)), {start, end}});
      start = end;
    }
  }

  std::optional<uint32_t> token_to_id(std::string_view t) const override {
    auto* id = vocab_.find(t);
    return id ? std::optional<uint32_t>(*id) : std::nullopt;
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  std::optional<std::string> continuing_subword_prefix() const override { return prefix_; }

 private:
  Token unk_token(size_t len) const {
    auto* id = vocab_.find(unk_);
    if (!id) fail(ErrorKind::CorruptFile, "WordPiece: the unk token '" + unk_ + "' is not in the vocabulary");
    return Token{*id, unk_, {0, len}};
  }

  VocabTable vocab_;
  std::string unk_;
  std::string prefix_;
  size_t max_chars_;
};

class WordLevel final : public Model {
 public:
  WordLevel(VocabTable vocab, std::string unk) : vocab_(std::move(vocab)), unk_(std::move(unk)) {}
  void tokenize(std::string_view seq, std::vector<Token>& out) const override {
    if (auto* id = vocab_.find(seq)) {
      out.push_back(Token{*id, std::string(seq), {0, seq.size()}});
      return;
    }
    auto* id = vocab_.find(unk_);
    if (!id) fail(ErrorKind::InvalidArgument, "WordLevel: '" + std::string(seq) + "' is not in the vocabulary and "
                                              "the unk token '" + unk_ + "' is missing");
    out.push_back(Token{*id, unk_, {0, seq.size()}});
  }
  std::optional<uint32_t> token_to_id(std::string_view t) const override {
    auto* id = vocab_.find(t);
    return id ? std::optional<uint32_t>(*id) : std::nullopt;
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }

 private:
  VocabTable vocab_;
  std::string unk_;
};

}  // namespace

std::unique_ptr<Model> make_wordpiece(VocabTable vocab, std::string unk_token, std::string continuing_subword_prefix,
                                      size_t max_input_chars_per_word) {
  return std::make_unique<WordPiece>(std::move(vocab), std::move(unk_token), std::move(continuing_subword_prefix),
                                     max_input_chars_per_word);
}

VocabTable parse_vocab_object(const JsonValue& v, const std::string& where) {
  VocabTable vocab;
  auto obj = json::as_object(v, where);
  vocab.reserve(obj.size(), obj.size() * 8);
  for (auto field : obj) {
    uint64_t id = 0;
    // The fast path takes the common case; anything else (5.0, -1, 2^31) gets as_token_id's
    // verdict, whose value is the id when it accepts.
    if (field.value.get(id) != simdjson::SUCCESS || id > kMaxTokenId)
      id = json::as_token_id(field.value, where + "[\"" + std::string(field.key) + "\"]");
    vocab.insert(field.key, uint32_t(id));
  }
  vocab.finalize();
  return vocab;
}

std::unique_ptr<Model> make_bpe_from_json(const JsonValue& v, const std::string& where);
std::unique_ptr<Model> make_unigram_from_json(const JsonValue& v, const std::string& where,
                                              const std::vector<std::string_view>* raw_scores);

std::unique_ptr<Model> make_model(const JsonValue& v, const std::string& where,
                                  const std::vector<std::string_view>* raw_unigram_scores) {
  json::as_object(v, where);
  std::string type;
  if (auto t = json::member(v, "type")) {
    type = std::string(json::as_string(*t, where + ".type"));
  } else if (json::member(v, "merges")) {
    type = "BPE";  // old files carry no "type": tell the models apart by their fields
  } else if (json::member(v, "continuing_subword_prefix") || json::member(v, "max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    auto vocab = json::member(v, "vocab");
    type = vocab && vocab->is_array() ? "Unigram" : "WordLevel";
  }
  if (type == "WordPiece") {
    return make_wordpiece(parse_vocab_object(json::required(v, "vocab", where), where + ".vocab"),
                          json::get_string(v, "unk_token", "[UNK]", where),
                          json::get_string(v, "continuing_subword_prefix", "##", where),
                          json::get_count(v, "max_input_chars_per_word", 100, where));
  }
  if (type == "BPE") return make_bpe_from_json(v, where);
  if (type == "Unigram") return make_unigram_from_json(v, where, raw_unigram_scores);
  if (type == "WordLevel") {
    return std::make_unique<WordLevel>(parse_vocab_object(json::required(v, "vocab", where), where + ".vocab"),
                                       json::get_string(v, "unk_token", "<unk>", where));
  }
  fail(ErrorKind::UnsupportedModel,
       where + ": model type '" + type + "' is not supported; supported: BPE, WordPiece, WordLevel, Unigram");
}

}  // namespace hfpipe::text
