// Model: Unigram (sentencepiece's unigram language model as `tokenizers` runs it): the
// Viterbi best segmentation over every vocabulary piece that matches, a character no piece
// covers becoming the unk piece (score: lowest score - 10), consecutive unks fused, unknown
// pieces optionally spelled as <0xXX> byte pieces.
#include <cmath>
#include <cstdio>
#include <memory>

#include "text/components.h"
#include "text/json_util.h"
#include "text/vocab_map.h"

namespace hfpipe::text {

namespace {

constexpr double kUnkPenalty = 10.0;

class Unigram final : public Model {
 public:
  Unigram(std::vector<std::pair<std::string, double>> pieces, UnigramOptions o, const std::string& where)
      : pieces_(std::move(pieces)), unk_id_(o.unk_id), byte_fallback_(o.byte_fallback) {
    if (pieces_.empty()) json::corrupt(where, "Unigram vocabulary is empty");
    check_vocab_size(pieces_.size(), where);  // a piece's position is its id
    if (unk_id_ && *unk_id_ >= pieces_.size())
      json::corrupt(where, "unk_id " + std::to_string(*unk_id_) + " is outside the vocabulary of " +
                               std::to_string(pieces_.size()) + " pieces");
    ids_.reserve(pieces_.size(), pieces_.size() * 8);
    min_score_ = INFINITY;
    for (size_t i = 0; i < pieces_.size(); ++i) {
      ids_.insert(pieces_[i].first, uint32_t(i));  // a repeated piece keeps its last id
      min_score_ = std::min(min_score_, pieces_[i].second);
    }
    ids_.finalize();
    for (const auto& [piece, score] : pieces_) trie_.insert(piece, *ids_.find(piece));  // the same id for a repeated piece
    if (byte_fallback_) {
      for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        const uint32_t* id = ids_.find(name);
        byte_ids_[b] = id ? int64_t(*id) : -1;
      }
    }
  }

  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    if (s.empty()) return;
    std::vector<std::string_view> pieces = viterbi(s);
    size_t offset = 0;
    for (std::string_view p : pieces) {
      Offsets off{offset, offset + p.size()};
      offset += p.size();
      if (const uint32_t* id = ids_.find(p)) {
        out.push_back(Token{*id, std::string(p), off});
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        for (unsigned char b : p) all = all && byte_ids_[b] >= 0;
        if (all) {
          for (unsigned char b : p) {
            char name[8];
            std::snprintf(name, sizeof(name), "<0x%02X>", b);
            out.push_back(Token{uint32_t(byte_ids_[b]), name, off});
          }
          continue;
        }
      }
      // The unk token keeps the text it stands for as its value, as `tokenizers` does.
      out.push_back(Token{unk(), std::string(p), off});
    }
  }

  std::optional<uint32_t> token_to_id(std::string_view t) const override {
    auto* id = ids_.find(t);
    return id ? std::optional<uint32_t>(*id) : std::nullopt;
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    if (id >= pieces_.size()) return std::nullopt;
    return std::string_view(pieces_[id].first);
  }
  size_t vocab_size() const override { return pieces_.size(); }

 private:
  uint32_t unk() const {
    if (!unk_id_) fail(ErrorKind::InvalidArgument, "Unigram: the text needs the unk piece but the model has no unk_id");
    return *unk_id_;
  }

  struct Node {
    uint32_t id = 0;
    double score = 0;
    int64_t start = -1;  // -1: no path reaches this position yet
  };

  // The best path; consecutive unk pieces are fused into one.
  std::vector<std::string_view> viterbi(std::string_view s) const {
    const double unk_score = min_score_ - kUnkPenalty;
    std::vector<Node> best(s.size() + 1);
    for (size_t start = 0; start < s.size();) {
      double here = best[start].score;
      size_t mblen = unicode::utf8_len(static_cast<unsigned char>(s[start]));
      if (start + mblen > s.size()) mblen = s.size() - start;
      bool single = false;
      trie_.prefixes(s.substr(start), [&](size_t len, uint32_t id) {
        Node& t = best[start + len];
        double cand = here + pieces_[id].second;
        if (t.start < 0 || cand > t.score) t = Node{id, cand, int64_t(start)};
        if (len == mblen) single = true;
      });
      if (!single) {
        Node& t = best[start + mblen];
        double cand = here + unk_score;
        if (t.start < 0 || cand > t.score) t = Node{unk(), cand, int64_t(start)};
      }
      start += mblen;
    }
    std::vector<std::string_view> out;
    size_t end = s.size();
    size_t fused_end = 0;  // end of the pending run of unks (0 = none)
    while (end > 0) {
      const Node& n = best[end];
      size_t start = size_t(n.start);
      bool is_unk = unk_id_ && n.id == *unk_id_;
      if (is_unk) {
        if (!fused_end) fused_end = end;
      } else {
        if (fused_end) out.push_back(s.substr(end, fused_end - end));
        fused_end = 0;
        out.push_back(s.substr(start, end - start));
      }
      end = start;
    }
    if (fused_end) out.push_back(s.substr(0, fused_end));
    return {out.rbegin(), out.rend()};
  }

  std::vector<std::pair<std::string, double>> pieces_;
  VocabTable ids_;
  PieceTrie trie_;
  std::optional<uint32_t> unk_id_;
  bool byte_fallback_;
  double min_score_;
  int64_t byte_ids_[256] = {};
};

// serde_json's f64 parsing (without its float_roundtrip feature), which `tokenizers` uses to
// read the scores: up to 19 significant digits as an integer, then one multiplication or
// division by a power of ten. It is off by one ulp for many scores, and Viterbi ties (runs of
// one character, e.g. "-----") are decided by those ulps, so the scores must be read the
// same way. nullopt for forms it would take another path for (the caller keeps its value).
std::optional<double> serde_json_f64(std::string_view t) {
  size_t i = 0;
  bool positive = true;
  if (i < t.size() && t[i] == '-') {
    positive = false;
    ++i;
  }
  auto digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (!digit(i)) return std::nullopt;
  uint64_t sig = 0;
  int32_t exp = 0;
  auto overflows = [](uint64_t a, uint64_t d) {
    return a >= UINT64_MAX / 10 && (a > UINT64_MAX / 10 || d > UINT64_MAX % 10);
  };
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit(i)) {
      uint64_t d = uint64_t(t[i] - '0');
      if (overflows(sig, d)) return std::nullopt;  // parse_long_integer
      sig = sig * 10 + d;
      ++i;
    }
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digit(i)) return std::nullopt;
    while (digit(i)) {
      uint64_t d = uint64_t(t[i] - '0');
      if (overflows(sig, d)) {
        while (digit(i)) ++i;  // parse_decimal_overflow: the remaining digits are dropped
        break;
      }
      sig = sig * 10 + d;
      --exp;
      ++i;
    }
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
    if (!digit(i)) return std::nullopt;
    int32_t e = 0;
    while (digit(i)) {
      if (e > 100000) return std::nullopt;
      e = e * 10 + (t[i++] - '0');
    }
    exp += neg ? -e : e;
  }
  if (i != t.size()) return std::nullopt;
  static const auto pow10 = [] {
    std::vector<double> p(309);
    for (int k = 0; k < 309; ++k) p[size_t(k)] = std::strtod(("1e" + std::to_string(k)).c_str(), nullptr);
    return p;
  }();
  double f = double(sig);
  while (true) {
    size_t a = size_t(exp < 0 ? -int64_t(exp) : exp);
    if (a < pow10.size()) {
      if (exp >= 0)
        f *= pow10[a];
      else
        f /= pow10[a];
      break;
    }
    if (f == 0.0) break;
    if (exp >= 0) return std::nullopt;
    f /= 1e308;
    exp += 308;
  }
  return positive ? f : -f;
}

}  // namespace

std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> pieces, UnigramOptions o,
                                    const std::string& where) {
  return std::make_unique<Unigram>(std::move(pieces), o, where);
}

std::unique_ptr<Model> make_unigram_from_json(const JsonValue& v, const std::string& where,
                                              const std::vector<std::string_view>* raw_scores) {
  std::vector<std::pair<std::string, double>> pieces;
  std::string w = where + ".vocab";
  auto arr = json::as_array(json::required(v, "vocab", where), w);
  pieces.reserve(arr.size());
  size_t i = 0;
  for (auto e : arr) {
    std::string here = w + "[" + std::to_string(i++) + "]";
    auto pair = json::as_array(e, here);
    if (pair.size() != 2) json::corrupt(here, "expected [piece, score]");
    auto it = pair.begin();
    std::string piece(json::as_string(*it, here));
    ++it;
    double score;
    if ((*it).get(score) != simdjson::SUCCESS) json::corrupt(here, "score is not a number");
    pieces.emplace_back(std::move(piece), score);
  }
  UnigramOptions o;
  if (raw_scores && raw_scores->size() == pieces.size())
    for (size_t k = 0; k < pieces.size(); ++k)
      if (auto f = serde_json_f64((*raw_scores)[k])) pieces[k].second = *f;
  if (auto u = json::member(v, "unk_id")) o.unk_id = json::as_token_id(*u, where + ".unk_id");
  o.byte_fallback = json::get_bool(v, "byte_fallback", false, where);
  return make_unigram(std::move(pieces), o, where);
}

}  // namespace hfpipe::text
