// sentencepiece .model files: a small bounds-checked protobuf reader for ModelProto (no
// protobuf library: three messages and a dozen fields), and the conversions transformers'
// convert_slow_tokenizer.py applies to them (SpmConverter and its Llama, T5 and XLM-RoBERTa
// variants). Any malformed byte gives Error(CorruptFile), never a crash.
#include "text/sentencepiece_model.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "text/token_id.h"
#include "text/tokenizer_impl.h"

namespace hfpipe::text {

namespace {

class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& where) : data_(data), where_(where) {}
  bool done() const { return pos_ >= data_.size(); }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) bad("truncated varint");
      uint8_t b = uint8_t(data_[pos_++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    bad("varint longer than 10 bytes");
  }
  // A protobuf int32 field: a non-negative value, or a negative one sign-extended to ten
  // bytes. protobuf's own reader keeps the low 32 bits of anything else (2^32 + 5 reads as 5);
  // such a varint is no writer's output, so it is refused rather than wrapped.
  int32_t int32_varint(const char* name) {
    uint64_t v = varint();
    if (v <= uint64_t(INT32_MAX) || v >= uint64_t(0) - (uint64_t(1) << 31)) return int32_t(int64_t(v));
    bad(std::string(name) + " " + std::to_string(v) + " is not a 32-bit integer");
  }
  // (field number, wire type)
  std::pair<uint32_t, uint32_t> tag() {
    uint64_t t = varint();
    if ((t >> 3) == 0 || (t >> 3) > 0x1FFFFFFF) bad("invalid field number");
    return {uint32_t(t >> 3), uint32_t(t & 7)};
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > data_.size() - pos_) bad("length-delimited field runs past the end");
    std::string_view s = data_.substr(pos_, size_t(n));
    pos_ += size_t(n);
    return s;
  }
  float fixed32_float() {
    if (data_.size() - pos_ < 4) bad("truncated 32-bit field");
    float f;
    std::memcpy(&f, data_.data() + pos_, 4);  // little-endian hosts only
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        return;
      case 1:
        if (data_.size() - pos_ < 8) bad("truncated 64-bit field");
        pos_ += 8;
        return;
      case 2:
        bytes();
        return;
      case 5:
        fixed32_float();
        return;
      default:
        bad("unsupported wire type " + std::to_string(wire));
    }
  }
  void expect(uint32_t wire, uint32_t want, const char* field) {
    if (wire != want) bad(std::string("field ") + field + " has the wrong wire type");
  }
  [[noreturn]] void bad(const std::string& what) const {
    fail(ErrorKind::CorruptFile, where_ + ": not a valid sentencepiece model (" + what + " at byte " +
                                     std::to_string(pos_) + ")");
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  const std::string& where_;
};

std::string utf8_field(ProtoReader& r, std::string_view s, const char* field) {
  if (unicode::first_invalid_utf8(s)) r.bad(std::string(field) + " is not valid UTF-8");
  return std::string(s);
}

SpmPiece read_piece(std::string_view data, const std::string& where) {
  ProtoReader r(data, where);
  SpmPiece p;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 1) {
      r.expect(wire, 2, "piece");
      p.piece = utf8_field(r, r.bytes(), "piece");
    } else if (field == 2) {
      r.expect(wire, 5, "score");
      p.score = r.fixed32_float();
    } else if (field == 3) {
      r.expect(wire, 0, "type");
      p.type = int(r.varint());
    } else {
      r.skip(wire);
    }
  }
  return p;
}

void read_trainer_spec(std::string_view data, const std::string& where, SpmModel& m) {
  ProtoReader r(data, where);
  while (!r.done()) {
    auto [field, wire] = r.tag();
    switch (field) {
      case 3:
        r.expect(wire, 0, "model_type");
        m.model_type = int(r.varint());
        break;
      case 35:
        r.expect(wire, 0, "byte_fallback");
        m.byte_fallback = r.varint() != 0;
        break;
      case 40:
        r.expect(wire, 0, "unk_id");
        m.unk_id = r.int32_varint("unk_id");
        break;
      case 45:
        r.expect(wire, 2, "unk_piece");
        m.unk_piece = utf8_field(r, r.bytes(), "unk_piece");
        break;
      case 24:
        r.expect(wire, 0, "treat_whitespace_as_suffix");
        m.treat_whitespace_as_suffix = r.varint() != 0;
        break;
      case 44:
        r.expect(wire, 2, "unk_surface");
        m.unk_surface = utf8_field(r, r.bytes(), "unk_surface");
        break;
      default:
        r.skip(wire);
    }
  }
}

void read_normalizer_spec(std::string_view data, const std::string& where, SpmModel& m) {
  ProtoReader r(data, where);
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 2) {
      r.expect(wire, 2, "precompiled_charsmap");
      m.precompiled_charsmap = std::string(r.bytes());
    } else if (field >= 3 && field <= 5) {
      r.expect(wire, 0, "normalizer flag");
      bool on = r.varint() != 0;
      (field == 3 ? m.add_dummy_prefix : field == 4 ? m.remove_extra_whitespaces : m.escape_whitespaces) = on;
    } else {
      r.skip(wire);
    }
  }
}

// A denormalizer_spec only matters when it carries rules (a charsmap).
bool denormalizer_has_rules(std::string_view data, const std::string& where) {
  ProtoReader r(data, where);
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 2 && wire == 2) {
      if (!r.bytes().empty()) return true;
    } else {
      r.skip(wire);
    }
  }
  return false;
}

// transformers' generate_merges(vocab, vocab_scores): every split of every piece into two
// pieces of the vocabulary is a merge, ordered by the piece's score (highest first), then by
// the lengths of the two halves in characters (longest first), then by the halves' ids.
std::vector<std::pair<std::string, std::string>> generate_merges(const std::vector<std::pair<std::string, double>>& scored,
                                                                 const std::unordered_map<std::string, uint32_t>& vocab) {
  struct M {
    std::string_view l, r;
    double score;
    size_t len_l, len_r;
    uint32_t id_l, id_r;
    size_t order;
  };
  // dict(vocab_scores): the first position of a piece, its last score.
  std::unordered_map<std::string_view, size_t> first_pos;
  std::vector<std::pair<std::string_view, double>> pieces;
  for (const auto& [p, s] : scored) {
    auto [it, fresh] = first_pos.emplace(p, pieces.size());
    if (fresh)
      pieces.emplace_back(p, s);
    else
      pieces[it->second].second = s;
  }
  std::vector<M> merges;
  for (const auto& [piece, score] : pieces) {
    std::vector<M> local;
    size_t chars_l = 0, total = unicode::count_chars(piece);
    for (size_t i = 0; i < piece.size();) {
      i += unicode::utf8_len(static_cast<unsigned char>(piece[i]));
      ++chars_l;
      if (i >= piece.size()) break;
      auto l = vocab.find(std::string(piece.substr(0, i)));
      auto r = vocab.find(std::string(piece.substr(i)));
      if (l != vocab.end() && r != vocab.end())
        local.push_back(M{piece.substr(0, i), piece.substr(i), score, chars_l, total - chars_l, l->second, r->second, 0});
    }
    std::stable_sort(local.begin(), local.end(),
                     [](const M& a, const M& b) { return std::tie(a.id_l, a.id_r) < std::tie(b.id_l, b.id_r); });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  // sorted(..., key=(score, len l, len r), reverse=True) is stable: ties keep their order.
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) {
    return std::tie(a.score, a.len_l, a.len_r) > std::tie(b.score, b.len_l, b.len_r);
  });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const auto& m : merges) out.emplace_back(std::string(m.l), std::string(m.r));
  return out;
}

}  // namespace

SpmModel read_sentencepiece_model(std::string_view data, const std::string& where) {
  SpmModel m;
  ProtoReader r(data, where);
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 1) {
      r.expect(wire, 2, "pieces");
      m.pieces.push_back(read_piece(r.bytes(), where));
    } else if (field == 2) {
      r.expect(wire, 2, "trainer_spec");
      read_trainer_spec(r.bytes(), where, m);
    } else if (field == 3) {
      r.expect(wire, 2, "normalizer_spec");
      read_normalizer_spec(r.bytes(), where, m);
    } else if (field == 5) {
      r.expect(wire, 2, "denormalizer_spec");
      m.has_denormalizer = denormalizer_has_rules(r.bytes(), where);
    } else {
      r.skip(wire);
    }
  }
  if (m.pieces.empty()) fail(ErrorKind::CorruptFile, where + ": the sentencepiece model has no pieces");
  return m;
}

bool looks_like_sentencepiece(std::string_view data) {
  // ModelProto starts with field 1 (pieces), length-delimited: tag byte 0x0A.
  return !data.empty() && data[0] == '\x0A';
}

void load_sentencepiece(Tokenizer::Impl& impl, const SpmModel& m, const SpmConvertOptions& o, const std::string& where) {
  // The converter's vocabulary: the pieces with their scores, with the class's changes.
  std::vector<std::pair<std::string, double>> scored;
  // T5's extra_ids (tokenizer_config.json; 100 in every T5) add that many tokens: a count
  // past kMaxExtraIds is a broken config, not a vocabulary (it would exhaust memory first).
  if (o.extra_ids > kMaxExtraIds)
    fail(ErrorKind::CorruptFile, where + ": extra_ids " + std::to_string(o.extra_ids) + " is more than " +
                                     std::to_string(kMaxExtraIds));
  scored.reserve(m.pieces.size() + o.extra_ids + 1);
  size_t skip = 0;
  if (o.flavor == SpmFlavor::XlmRoberta) {
    scored = {{"<s>", 0.0}, {"<pad>", 0.0}, {"</s>", 0.0}, {"<unk>", 0.0}};
    skip = 3;
  } else if (o.flavor == SpmFlavor::Llama) {
    for (size_t i = 0; i < 3 && i < m.pieces.size(); ++i) scored.emplace_back(m.pieces[i].piece, 0.0);
    skip = 3;
  }
  for (size_t i = skip; i < m.pieces.size(); ++i) scored.emplace_back(m.pieces[i].piece, double(m.pieces[i].score));
  if (o.flavor == SpmFlavor::T5)
    for (size_t i = o.extra_ids; i-- > 0;) scored.emplace_back("<extra_id_" + std::to_string(i) + ">", 0.0);
  if (o.flavor == SpmFlavor::XlmRoberta) scored.emplace_back("<mask>", 0.0);
  check_vocab_size(scored.size(), where);  // ids are positions

  bool byte_fallback = o.flavor == SpmFlavor::Llama;  // only LlamaConverter handles it
  if (m.model_type == 1) {
    UnigramOptions u;
    int64_t unk = o.flavor == SpmFlavor::XlmRoberta ? 3 : o.flavor == SpmFlavor::Llama ? 0 : m.unk_id;
    if (unk < 0 || size_t(unk) >= scored.size()) fail(ErrorKind::CorruptFile, where + ": unk_id out of range");
    u.unk_id = uint32_t(unk);
    u.byte_fallback = byte_fallback;
    impl.model = make_unigram(scored, u, where);
  } else if (m.model_type == 2) {
    // The extractor's vocabulary is the file's own pieces; the BPE's is the converter's.
    std::unordered_map<std::string, uint32_t> spm_vocab;
    for (size_t i = 0; i < m.pieces.size(); ++i) spm_vocab[m.pieces[i].piece] = uint32_t(i);
    auto merges = generate_merges(scored, spm_vocab);
    VocabTable vocab;
    vocab.reserve(scored.size(), scored.size() * 8);
    for (size_t i = 0; i < scored.size(); ++i) vocab.insert(scored[i].first, uint32_t(i));
    vocab.finalize();
    std::vector<std::pair<std::string_view, std::string_view>> views;
    views.reserve(merges.size());
    for (const auto& [a, b] : merges) views.emplace_back(a, b);
    BpeOptions b;
    b.unk_token = m.unk_piece;
    b.fuse_unk = true;
    b.byte_fallback = byte_fallback;
    impl.model = make_bpe(std::move(vocab), views, b, where);
  } else {
    fail(ErrorKind::UnsupportedModel, where + ": sentencepiece model type " + std::to_string(m.model_type) +
                                          " (1 = unigram and 2 = BPE are supported; transformers converts no other)");
  }

  // Control (3) and user-defined (4) pieces become added tokens, control ones special.
  std::vector<AddedToken> added;
  for (const auto& p : m.pieces) {
    if (p.type != 3 && p.type != 4) continue;
    AddedToken t;
    t.content = p.piece;
    t.normalized = false;
    t.special = p.type == 3;
    added.push_back(t);
  }
  // T5Tokenizer's own added tokens <extra_id_N>. The slow class gives them lstrip+rstrip, but the
  // fast tokenizer transformers builds gets T5TokenizerFast's plain strings (no strip): the space
  // before one is removed by the normalizer's right Strip of the preceding segment instead, so it
  // stays out of the token's offsets.
  if (o.flavor == SpmFlavor::T5) {
    for (size_t i = 0; i < o.extra_ids; ++i) {
      AddedToken t;
      t.content = "<extra_id_" + std::to_string(i) + ">";
      t.special = true;
      t.normalized = false;
      added.push_back(t);
    }
  }
  impl.add_tokens(added, where);

  const std::string meta = "\xE2\x96\x81";
  MetaspaceOptions ms;
  ms.prepend_scheme = !o.add_prefix_space ? PrependScheme::Never : o.legacy ? PrependScheme::Always : PrependScheme::First;
  if (o.flavor == SpmFlavor::Llama) {
    if (o.legacy) {
      std::vector<std::unique_ptr<Normalizer>> seq;
      if (o.add_prefix_space) seq.push_back(make_prepend_normalizer(meta));
      seq.push_back(make_replace_normalizer(" ", meta));
      impl.normalizer = make_sequence_normalizer(std::move(seq));
    } else {
      ms.split = false;
      impl.pre_tokenizer = make_metaspace_pre_tokenizer(ms);
    }
    std::vector<std::unique_ptr<Decoder>> dec;
    dec.push_back(make_replace_decoder(meta, " "));
    dec.push_back(make_byte_fallback_decoder());
    dec.push_back(make_fuse_decoder());
    if (o.add_prefix_space) dec.push_back(make_strip_decoder(U' ', 1, 0));
    impl.decoder = make_sequence_decoder(std::move(dec));
    return;  // LlamaTokenizerFast builds its own post-processor
  }
  std::vector<std::unique_ptr<Normalizer>> seq;
  if (!m.precompiled_charsmap.empty()) seq.push_back(make_precompiled_normalizer(m.precompiled_charsmap, where));
  seq.push_back(make_strip_normalizer(false, true));
  seq.push_back(make_regex_replace_normalizer(" {2,}", meta, where));
  impl.normalizer = make_sequence_normalizer(std::move(seq));
  impl.pre_tokenizer = make_metaspace_pre_tokenizer(ms);
  impl.decoder = make_metaspace_decoder(ms);

  auto id_of = [&](const std::string& tok) {
    auto id = impl.added.token_to_id(tok, *impl.model);
    if (!id) fail(ErrorKind::CorruptFile, where + ": special token '" + tok + "' is not in the vocabulary");
    return *id;
  };
  std::map<std::string, TemplateSpecialToken> st;
  if (o.flavor == SpmFlavor::T5) {
    st["</s>"] = TemplateSpecialToken{{id_of("</s>")}, {"</s>"}};
    impl.post_processor = make_template_processing(parse_template("$A:0 </s>:0", where),
                                                   parse_template("$A:0 </s>:0 $B:0 </s>:0", where), std::move(st), where);
  } else if (o.flavor == SpmFlavor::XlmRoberta) {
    st["<s>"] = TemplateSpecialToken{{id_of("<s>")}, {"<s>"}};
    st["</s>"] = TemplateSpecialToken{{id_of("</s>")}, {"</s>"}};
    impl.post_processor = make_template_processing(parse_template("<s>:0 $A:0 </s>:0", where),
                                                   parse_template("<s>:0 $A:0 </s>:0 </s>:0 $B:0 </s>:0", where),
                                                   std::move(st), where);
  }
}

}  // namespace hfpipe::text
