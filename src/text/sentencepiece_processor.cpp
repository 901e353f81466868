// sentencepiece's SentencePieceProcessor, as the slow MarianTokenizer and M2M100Tokenizer
// call it (sp.encode(text, out_type=str), sp.decode_pieces): its normaliser (charsmap rules
// by longest match, user-defined symbols kept whole, dummy prefix, extra whitespace removal,
// with the byte alignment back to the input), the unigram Viterbi and the BPE merge loop
// (both on float scores, as sentencepiece computes them), byte fallback, the fusing of
// unknown runs, and piece decoding. Written from sentencepiece's documented behaviour and
// checked against the `sentencepiece` package by tests/python/test_tokenizer_seq2seq.py.
#include "text/sentencepiece_processor.h"

#include <cfloat>
#include <cstdio>
#include <cstring>
#include <queue>

#include "core/error.h"
#include "text/unicode.h"
#include "text/vocab_map.h"

namespace hfpipe::text {

namespace {

const std::string kSpace = "\xE2\x96\x81";  // U+2581, sentencepiece's whitespace symbol
enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// sentencepiece's strict UTF-8 check of one character (overlong forms, surrogates and values
// past U+10FFFF are errors); returns the length, 0 when invalid.
size_t valid_utf8_char(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  if (s.empty()) return 0;
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    char32_t cp = (char32_t(c & 0x0F) << 12) | (char32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    char32_t cp = (char32_t(c & 0x07) << 18) | (char32_t(b(1) & 0x3F) << 12) | (char32_t(b(2) & 0x3F) << 6) |
                  (b(3) & 0x3F);
    return cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0;
  }
  return 0;
}

}  // namespace

struct SpmProcessor::Impl {
  SpmModel m;
  std::string where;
  std::unordered_map<std::string, int32_t> reserved;  // control, unknown, byte pieces
  std::unordered_map<std::string, int32_t> pieces;    // normal, user-defined, unused pieces
  PieceTrie piece_trie;                                // over `pieces`
  PieceTrie user_trie;                                 // user-defined symbols
  std::vector<uint32_t> units;                        // precompiled charsmap: Darts double array
  std::string replacements;                           // ... and its NUL-terminated results
  float min_score = FLT_MAX, max_score = FLT_MIN;     // over normal pieces (FLT_MIN as sentencepiece)
  int32_t unk_id = 0;

  int type(int32_t id) const { return m.pieces[size_t(id)].type; }

  // ---- normaliser -------------------------------------------------------------------
  // The longest charsmap rule matching a prefix of `s`: (its result, bytes consumed).
  bool charsmap_rule(std::string_view s, std::string_view* out, size_t* consumed) const {
    if (units.empty()) return false;
    auto offset = [](uint32_t u) { return size_t(u >> 10) << ((u & (1u << 9)) >> 6); };
    size_t pos = offset(units[0]);
    size_t best_len = 0;
    uint32_t best_value = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      pos ^= c;
      if (pos >= units.size()) break;
      uint32_t unit = units[pos];
      if ((unit & ((1u << 31) | 0xFF)) != c) break;
      pos ^= offset(unit);
      if (pos >= units.size()) break;
      if ((unit >> 8) & 1) {
        best_len = i + 1;
        best_value = units[pos] & ((1u << 31) - 1);
      }
    }
    if (best_len == 0 || best_value >= replacements.size()) return false;
    size_t end = replacements.find('\0', best_value);
    if (end == std::string::npos) end = replacements.size();
    *out = std::string_view(replacements).substr(best_value, end - best_value);
    *consumed = best_len;
    return true;
  }

  // sentencepiece's Normalizer::NormalizePrefix: (normalised text, input bytes consumed).
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view s) const {
    size_t user_len = 0;
    user_trie.prefixes(s, [&](size_t len, uint32_t) { user_len = len; });
    if (user_len) return {s.substr(0, user_len), user_len};
    std::string_view rule;
    size_t consumed = 0;
    if (charsmap_rule(s, &rule, &consumed)) return {rule, consumed};
    size_t len = valid_utf8_char(s);
    if (len == 0) return {"\xEF\xBF\xBD", 1};
    return {s.substr(0, len), len};
  }

  // Normalises `in`; norm_to_orig[i] is the input byte of normalised byte i (plus the end).
  std::string normalize(std::string_view in, std::vector<size_t>& norm_to_orig) const {
    std::string out;
    norm_to_orig.clear();
    size_t consumed = 0;
    const std::string_view space = m.escape_whitespaces ? std::string_view(kSpace) : std::string_view(" ");
    if (m.remove_extra_whitespaces) {
      while (!in.empty()) {
        auto [p, n] = normalize_prefix(in);
        if (p != " ") break;
        in.remove_prefix(n);
        consumed += n;
      }
    }
    if (in.empty()) {
      norm_to_orig.push_back(consumed);
      return out;
    }
    auto emit = [&](std::string_view piece) {
      out += piece;
      norm_to_orig.insert(norm_to_orig.end(), piece.size(), consumed);
    };
    if (m.add_dummy_prefix) emit(space);
    bool prev_space = m.remove_extra_whitespaces;
    while (!in.empty()) {
      auto [p, n] = normalize_prefix(in);
      while (prev_space && !p.empty() && p.front() == ' ') p.remove_prefix(1);
      if (!p.empty()) {
        for (char c : p) emit(c == ' ' && m.escape_whitespaces ? std::string_view(kSpace) : std::string_view(&c, 1));
        prev_space = p.back() == ' ';
      }
      consumed += n;
      in.remove_prefix(n);
      if (!m.remove_extra_whitespaces) prev_space = false;
    }
    if (m.remove_extra_whitespaces) {
      while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0) {
        size_t len = out.size() - space.size();
        consumed = norm_to_orig[len];
        out.resize(len);
        norm_to_orig.resize(len);
      }
    }
    norm_to_orig.push_back(consumed);
    return out;
  }

  // ---- models -----------------------------------------------------------------------
  // (piece, id) segments of the normalised text.
  using Segments = std::vector<std::pair<std::string_view, int32_t>>;

  Segments unigram(std::string_view s) const {
    struct Best {
      int32_t id = -1;
      float score = 0;
      int64_t start = -1;
    };
    const float unk_score = min_score - 10.0f;
    std::vector<Best> best(s.size() + 1);
    for (size_t start = 0; start < s.size();) {
      const float here = best[start].score;
      size_t mblen = std::min(unicode::utf8_len(static_cast<unsigned char>(s[start])), s.size() - start);
      bool single = false;
      piece_trie.prefixes(s.substr(start), [&](size_t len, int32_t id) {
        if (type(id) == kUnused) return;
        // User-defined symbols get a bonus so that they are always chosen.
        float score = type(id) == kUserDefined ? float(double(len) * max_score - 0.1) : m.pieces[size_t(id)].score;
        float cand = score + here;
        Best& t = best[start + len];
        if (t.start < 0 || cand > t.score) t = Best{id, cand, int64_t(start)};
        if (len == mblen) single = true;
      });
      if (!single) {
        float cand = unk_score + here;
        Best& t = best[start + mblen];
        if (t.start < 0 || cand > t.score) t = Best{unk_id, cand, int64_t(start)};
      }
      start += mblen;
    }
    Segments out;
    for (size_t end = s.size(); end > 0;) {
      const Best& b = best[end];
      out.emplace_back(s.substr(size_t(b.start), end - size_t(b.start)), b.id);
      end = size_t(b.start);
    }
    return {out.rbegin(), out.rend()};
  }

  // (sentencepiece re-splits a merge that produced an *unused* piece; trained models here have
  // none, and that re-split is not reproduced.)
  Segments bpe(std::string_view s) const {
    struct Symbol {
      int64_t prev, next;
      bool freeze;
      std::string_view piece;
    };
    struct Pair {
      int64_t left, right;
      float score;
      size_t size;
    };
    // Highest score first; on a tie the leftmost.
    auto worse = [](const Pair& a, const Pair& b) { return a.score < b.score || (a.score == b.score && a.left > b.left); };
    std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
    std::vector<Symbol> sym;
    for (size_t i = 0; i < s.size();) {
      size_t user_len = 0;
      user_trie.prefixes(s.substr(i), [&](size_t len, uint32_t) { user_len = len; });
      size_t len = user_len ? user_len : std::min(unicode::utf8_len(static_cast<unsigned char>(s[i])), s.size() - i);
      int64_t idx = int64_t(sym.size());
      sym.push_back(Symbol{idx - 1, i + len < s.size() ? idx + 1 : -1, user_len > 0, s.substr(i, len)});
      i += len;
    }
    auto maybe_add = [&](int64_t l, int64_t r) {
      if (l < 0 || r < 0 || sym[size_t(l)].freeze || sym[size_t(r)].freeze) return;
      std::string_view merged(sym[size_t(l)].piece.data(), sym[size_t(l)].piece.size() + sym[size_t(r)].piece.size());
      auto it = pieces.find(std::string(merged));
      if (it == pieces.end()) return;
      agenda.push(Pair{l, r, m.pieces[size_t(it->second)].score, merged.size()});
    };
    for (size_t i = 1; i < sym.size(); ++i) maybe_add(int64_t(i) - 1, int64_t(i));
    while (!agenda.empty()) {
      Pair top = agenda.top();
      agenda.pop();
      Symbol& l = sym[size_t(top.left)];
      Symbol& r = sym[size_t(top.right)];
      if (l.piece.empty() || r.piece.empty() || l.piece.size() + r.piece.size() != top.size) continue;
      l.piece = std::string_view(l.piece.data(), l.piece.size() + r.piece.size());
      l.next = r.next;
      if (r.next >= 0) sym[size_t(r.next)].prev = top.left;
      r.piece = {};
      maybe_add(l.prev, top.left);
      maybe_add(top.left, l.next);
    }
    Segments out;
    for (int64_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[size_t(i)].next)
      out.emplace_back(sym[size_t(i)].piece, piece_to_id(sym[size_t(i)].piece));
    return out;
  }

  int32_t piece_to_id(std::string_view p) const {
    std::string key(p);
    if (auto it = reserved.find(key); it != reserved.end()) return it->second;
    if (auto it = pieces.find(key); it != pieces.end()) return it->second;
    return unk_id;
  }
};

SpmProcessor::SpmProcessor(SpmModel model, const std::string& where) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.m = std::move(model);
  s.where = where;
  if (s.m.model_type != 1 && s.m.model_type != 2)
    fail(ErrorKind::UnsupportedModel, where + ": sentencepiece model type " + std::to_string(s.m.model_type) +
                                          " (1 = unigram and 2 = BPE are supported)");
  if (s.m.treat_whitespace_as_suffix)
    fail(ErrorKind::UnsupportedModel, where + ": treat_whitespace_as_suffix sentencepiece models are not supported");
  if (s.m.has_denormalizer)
    fail(ErrorKind::UnsupportedModel, where + ": sentencepiece denormalization rules are not supported");
  bool have_unk = false;
  for (size_t i = 0; i < s.m.pieces.size(); ++i) {
    const SpmPiece& p = s.m.pieces[i];
    int32_t id = int32_t(i);
    if (p.type == kNormal || p.type == kUserDefined || p.type == kUnused) {
      s.pieces.emplace(p.piece, id);
      s.piece_trie.insert(p.piece, id);
      if (p.type == kUserDefined) s.user_trie.insert(p.piece, id);
      if (p.type == kNormal) {
        s.min_score = std::min(s.min_score, p.score);
        s.max_score = std::max(s.max_score, p.score);
      }
    } else {
      s.reserved.emplace(p.piece, id);
      if (p.type == kUnknown) {
        if (have_unk) fail(ErrorKind::CorruptFile, where + ": the sentencepiece model has more than one unk piece");
        have_unk = true;
        s.unk_id = id;
      }
    }
  }
  if (!have_unk) fail(ErrorKind::CorruptFile, where + ": the sentencepiece model has no unk piece");
  const std::string& cm = s.m.precompiled_charsmap;
  if (!cm.empty()) {
    uint32_t trie_bytes = 0;
    if (cm.size() >= 4) std::memcpy(&trie_bytes, cm.data(), 4);  // little-endian hosts only
    if (cm.size() < 4 || size_t(trie_bytes) > cm.size() - 4 || trie_bytes < 4)
      fail(ErrorKind::CorruptFile, where + ": precompiled_charsmap is malformed");
    s.units.resize(trie_bytes / 4);
    std::memcpy(s.units.data(), cm.data() + 4, s.units.size() * 4);
    s.replacements = cm.substr(4 + s.units.size() * 4);
  }
}

SpmProcessor::~SpmProcessor() = default;
SpmProcessor::SpmProcessor(SpmProcessor&&) noexcept = default;

int32_t SpmProcessor::piece_to_id(std::string_view piece) const { return impl_->piece_to_id(piece); }

std::vector<SpmPieceOut> SpmProcessor::encode(std::string_view text) const {
  const Impl& s = *impl_;
  std::vector<size_t> n2o;
  std::string norm = s.normalize(text, n2o);
  Impl::Segments segs = s.m.model_type == 1 ? s.unigram(norm) : s.bpe(norm);
  std::vector<SpmPieceOut> out;
  size_t consumed = 0;
  bool prev_unk = false;
  for (const auto& [w, id] : segs) {
    size_t b = consumed, e = consumed + w.size();
    consumed = e;
    bool is_unk = id == s.unk_id;
    if (s.m.byte_fallback && is_unk) {
      // Unknown text is spelled as its bytes; the first byte piece carries the whole span.
      for (size_t k = 0; k < w.size(); ++k) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(w[k]));
        out.push_back(SpmPieceOut{name, s.piece_to_id(name), n2o[b], k == 0 ? n2o[e] : n2o[b]});
      }
      prev_unk = false;
      continue;
    }
    if (prev_unk && is_unk) {  // sentencepiece fuses a run of unknown pieces into one
      out.back().piece += w;
      out.back().end = n2o[e];
    } else {
      out.push_back(SpmPieceOut{std::string(w), id, n2o[b], n2o[e]});
    }
    prev_unk = is_unk;
  }
  return out;
}

std::string SpmProcessor::decode_pieces(const std::vector<std::string>& pieces) const {
  const Impl& s = *impl_;
  std::string text;
  std::string bytes;  // a pending run of byte pieces
  auto flush_bytes = [&]() {
    // Each invalid byte becomes U+FFFD; valid characters are copied.
    for (size_t off = 0; off < bytes.size();) {
      size_t len = valid_utf8_char(std::string_view(bytes).substr(off));
      if (len == 0) {
        text += "\xEF\xBF\xBD";
        off += 1;
      } else {
        text.append(bytes, off, len);
        off += len;
      }
    }
    bytes.clear();
  };
  for (const std::string& piece : pieces) {
    int32_t id = s.piece_to_id(piece);
    int t = s.type(id);
    if (t == kByte) {
      unsigned v = 0;
      std::sscanf(piece.c_str() + 3, "%2X", &v);
      bytes.push_back(char(v));
      continue;
    }
    flush_bytes();
    if (t == kControl) continue;  // invisible
    if (t == kUnknown) {
      text += piece == s.m.pieces[size_t(id)].piece ? s.m.unk_surface : piece;
      continue;
    }
    std::string_view p = piece;
    // At the start of the text a leading whitespace symbol is the dummy prefix.
    if (text.empty() && (s.m.add_dummy_prefix || s.m.remove_extra_whitespaces) && p.substr(0, kSpace.size()) == kSpace)
      p.remove_prefix(kSpace.size());
    for (size_t pos = 0; pos < p.size();) {
      if (p.compare(pos, kSpace.size(), kSpace) == 0) {
        text += ' ';
        pos += kSpace.size();
      } else {
        text += p[pos++];
      }
    }
  }
  flush_bytes();
  return text;
}

}  // namespace hfpipe::text
