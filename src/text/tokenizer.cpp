// The tokenizer pipeline (encode, truncate, post-process, pad, decode) and tokenizer.json.
#include <omp.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "text/json_util.h"
#include "text/tokenizer_impl.h"

namespace hfpipe::text {

namespace u = unicode;

// ---------------------------------------------------------------------------------------
// Utilities

bool is_valid_utf8(std::string_view text) { return !u::first_invalid_utf8(text).has_value(); }

std::vector<std::pair<size_t, size_t>> byte_to_char_offsets(std::string_view text,
                                                            const std::vector<std::pair<size_t, size_t>>& offsets) {
  // Char index of every byte (tokenizers' BytesToCharOffsetConverter).
  std::vector<uint32_t> char_of(text.size());
  uint32_t ci = 0;
  for (size_t i = 0; i < text.size();) {
    size_t len = u::utf8_len(static_cast<unsigned char>(text[i]));
    for (size_t k = 0; k < len && i + k < text.size(); ++k) char_of[i + k] = ci;
    i += len;
    ++ci;
  }
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(offsets.size());
  for (const auto& [s, e] : offsets) {
    if (s >= text.size()) {
      out.emplace_back(s, e);  // not convertible: tokenizers leaves it as it is
      continue;
    }
    size_t cs = char_of[s];
    if (e < text.size()) {
      out.emplace_back(cs, char_of[e]);
    } else {
      size_t last = e >= 1 && e - 1 < text.size() ? size_t(char_of[e - 1]) : cs + 1;
      out.emplace_back(cs, last + 1);
    }
  }
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(ErrorKind::NotFound, "cannot open " + p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail(ErrorKind::Io, "cannot read " + p.string());
  return ss.str();
}

// ---------------------------------------------------------------------------------------
// tokenizer.json

namespace {

Side parse_side(std::string_view s, const std::string& where) {
  if (s == "Left" || s == "left") return Side::Left;
  if (s == "Right" || s == "right") return Side::Right;
  json::corrupt(where, "expected \"Left\" or \"Right\"");
}

}  // namespace

// The number tokens of model.vocab[*][1] as written (for a Unigram model), read with the
// On-Demand API, which keeps raw tokens; empty when the document has no such array.
const std::vector<std::string_view>& raw_unigram_scores(const simdjson::padded_string& padded) {
  thread_local std::vector<std::string_view> out;
  out.clear();
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return out;
  simdjson::ondemand::value model, vocab;
  if (doc["model"].get(model) || model["vocab"].get(vocab)) return out;
  simdjson::ondemand::array arr;
  if (vocab.get_array().get(arr)) return out;
  for (auto item : arr) {
    simdjson::ondemand::array pair;
    if (item.get_array().get(pair)) break;
    size_t k = 0;
    for (auto e : pair) {
      if (k++ == 1) {
        std::string_view raw;
        if (e.raw_json_token().get(raw)) break;
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
          raw.remove_suffix(1);
        out.push_back(raw);
      }
    }
  }
  return out;
}

void load_tokenizer_json(Tokenizer::Impl& impl, std::string_view json_text, const std::string& where) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json_text);
  simdjson::dom::element doc;
  auto err = parser.parse(padded).get(doc);
  if (err) json::corrupt(where, std::string("not valid JSON (") + simdjson::error_message(err) + ")");
  json::as_object(doc, where);

  if (auto n = json::member(doc, "normalizer")) impl.normalizer = make_normalizer(*n, where + ": normalizer");
  if (auto p = json::member(doc, "pre_tokenizer")) impl.pre_tokenizer = make_pre_tokenizer(*p, where + ": pre_tokenizer");
  impl.model = make_model(json::required(doc, "model", where), where + ": model", &raw_unigram_scores(padded));
  if (auto p = json::member(doc, "post_processor"))
    impl.post_processor = make_post_processor(*p, where + ": post_processor");
  if (auto d = json::member(doc, "decoder")) impl.decoder = make_decoder(*d, where + ": decoder");

  if (auto t = json::member(doc, "truncation")) {
    std::string w = where + ": truncation";
    TruncationOptions o;
    o.max_length = json::as_count(json::required(*t, "max_length", w), w + ".max_length");
    o.stride = json::get_count(*t, "stride", 0, w);
    std::string strategy = json::get_string(*t, "strategy", "LongestFirst", w);
    if (strategy == "LongestFirst")
      o.strategy = TruncationStrategy::LongestFirst;
    else if (strategy == "OnlyFirst")
      o.strategy = TruncationStrategy::OnlyFirst;
    else if (strategy == "OnlySecond")
      o.strategy = TruncationStrategy::OnlySecond;
    else
      json::corrupt(w + ".strategy", "unknown strategy '" + strategy + "'");
    if (auto d = json::member(*t, "direction")) o.direction = parse_side(json::as_string(*d, w), w + ".direction");
    impl.file_truncation = o;
  }
  if (auto p = json::member(doc, "padding")) {
    std::string w = where + ": padding";
    PaddingOptions o;
    PadParams pp;
    if (auto s = json::member(*p, "strategy")) {
      if (s->is_object()) {
        if (auto f = json::member(*s, "Fixed")) o.length = json::as_count(*f, w + ".strategy.Fixed");
      }
    }
    if (auto d = json::member(*p, "direction")) o.direction = parse_side(json::as_string(*d, w), w + ".direction");
    o.pad_to_multiple_of = json::get_count(*p, "pad_to_multiple_of", 0, w);
    if (auto id = json::member(*p, "pad_id")) pp.pad_id = json::as_token_id(*id, w + ".pad_id");
    if (auto id = json::member(*p, "pad_type_id")) pp.pad_type_id = json::as_type_id(*id, w + ".pad_type_id");
    pp.pad_token = json::get_string(*p, "pad_token", "[PAD]", w);
    impl.file_padding = o;
    impl.file_pad = pp;
  }

  std::vector<AddedToken> added;
  if (auto a = json::member(doc, "added_tokens")) {
    size_t i = 0;
    for (auto t : json::as_array(*a, where + ": added_tokens")) {
      std::string w = where + ": added_tokens[" + std::to_string(i++) + "]";
      AddedToken tok;
      tok.content = json::require_string(t, "content", w);
      // The library reads the id as a u32 and then ignores it (a token gets the model's id for
      // its content, else the next free one), so any u32 is accepted here and nothing else.
      if (auto id = json::member(t, "id")) {
        uint64_t u;
        if (id->get(u) != simdjson::SUCCESS || u > UINT32_MAX) json::corrupt(w + ".id", "expected a u32 id");
      }
      tok.single_word = json::get_bool(t, "single_word", false, w);
      tok.lstrip = json::get_bool(t, "lstrip", false, w);
      tok.rstrip = json::get_bool(t, "rstrip", false, w);
      tok.normalized = json::get_bool(t, "normalized", true, w);
      tok.special = json::get_bool(t, "special", false, w);
      added.push_back(std::move(tok));
    }
  }
  impl.add_tokens(added, where);
}

// ---------------------------------------------------------------------------------------
// The pipeline

void Tokenizer::Impl::add_tokens(const std::vector<AddedToken>& tokens, const std::string& where) {
  added.add_tokens(tokens, *model, normalizer.get(), where);
}

Enc Tokenizer::Impl::encode_single(std::string_view text, uint32_t type_id, bool char_offsets, bool target) const {
  const Model& m = target && target_model ? *target_model : *model;
  if (auto bad = u::first_invalid_utf8(text))
    fail(ErrorKind::InvalidArgument, "input text is not valid UTF-8 (invalid byte at offset " + std::to_string(*bad) +
                                         "); decode it, or replace invalid bytes, before tokenizing");
  PreTokenizedString pts = added.extract_and_normalize(normalizer.get(), text);
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(pts);
  Enc enc;
  std::vector<Token> tokens;
  const auto& splits = pts.splits();
  enc.reserve(text.size() / 3 + 4);
  for (size_t i = 0; i < splits.size(); ++i) {
    const Split& sp = splits[i];
    const std::vector<Token>* toks;
    if (sp.tokens) {
      toks = &*sp.tokens;
    } else {
      tokens.clear();
      m.tokenize(sp.normalized.get(), tokens);
      toks = &tokens;
    }
    size_t shift = sp.normalized.offsets_original().first;
    for (const Token& t : *toks) {
      Offsets off = t.offsets;
      if (auto r = sp.normalized.normalized_to_original(t.offsets.first, t.offsets.second))
        off = {shift + r->first, shift + r->second};
      enc.push(t.id, type_id, t.value, int32_t(i), off, 0);
    }
  }
  if (char_offsets && !enc.offsets.empty()) enc.offsets = byte_to_char_offsets(text, enc.offsets);
  return enc;
}

namespace {

void truncate_pair(Enc& enc, std::optional<Enc>& pair, const TruncationOptions& p) {
  auto trunc = [&](Enc& e, size_t max_len) {
    if (max_len < e.size() && max_len > 0 && p.stride >= max_len)
      fail(ErrorKind::InvalidArgument, "truncation stride " + std::to_string(p.stride) +
                                           " must be smaller than the length a sequence is truncated to (" +
                                           std::to_string(max_len) + ")");
    e.truncate(max_len, p.stride, p.direction);
  };
  if (p.max_length == 0) {
    trunc(enc, 0);
    if (pair) trunc(*pair, 0);
    return;
  }
  size_t total = enc.size() + (pair ? pair->size() : 0);
  if (total <= p.max_length) return;
  size_t to_remove = total - p.max_length;
  switch (p.strategy) {
    case TruncationStrategy::LongestFirst:
      if (pair) {
        size_t n1 = enc.size(), n2 = pair->size();
        bool swap = false;
        if (n1 > n2) {
          swap = true;
          std::swap(n1, n2);
        }
        if (n1 > p.max_length)
          n2 = n1;
        else
          n2 = std::max(n1, p.max_length - n1);
        if (n1 + n2 > p.max_length) {
          n1 = p.max_length / 2;
          n2 = n1 + p.max_length % 2;
        }
        if (swap) std::swap(n1, n2);
        trunc(enc, n1);
        trunc(*pair, n2);
      } else {
        trunc(enc, total - to_remove);
      }
      break;
    case TruncationStrategy::OnlyFirst:
    case TruncationStrategy::OnlySecond: {
      Enc* target = nullptr;
      if (p.strategy == TruncationStrategy::OnlyFirst) {
        target = &enc;
      } else if (pair) {
        target = &*pair;
      } else {
        fail(ErrorKind::InvalidArgument, "truncation 'only_second' needs a pair of sequences");
      }
      if (target->size() > to_remove) {
        trunc(*target, target->size() - to_remove);
      } else {
        fail(ErrorKind::InvalidArgument,
             "the sequence to truncate is too short to respect max_length " + std::to_string(p.max_length));
      }
      break;
    }
  }
}

}  // namespace

std::optional<PadParams> Tokenizer::Impl::pad_params() const {
  // transformers pads with its own pad_token / pad_token_id / pad_token_type_id.
  auto it = special_tokens.find("pad_token");
  if (it != special_tokens.end()) {
    PadParams p;
    p.pad_token = it->second;
    p.pad_type_id = pad_token_type_id;
    if (auto id = added.token_to_id(it->second, *model)) {
      p.pad_id = *id;
    } else if (auto unk = special_tokens.find("unk_token"); unk != special_tokens.end()) {
      auto uid = added.token_to_id(unk->second, *model);
      if (!uid) return std::nullopt;
      p.pad_id = *uid;  // convert_tokens_to_ids falls back to the unk id
    } else {
      return std::nullopt;
    }
    return p;
  }
  if (file_pad) return file_pad;
  return std::nullopt;
}

Enc Tokenizer::Impl::post_process(Enc enc, std::optional<Enc> pair, const EncodeOptions& options) const {
  const PostProcessor* post_processor = this->post_processor.get();
  if (options.target && lang.style != LangStyle::None) {
    if (!target_post_processor)
      fail(ErrorKind::InvalidArgument, "encoding a target text needs tgt_lang; set it to one of the tokenizer's language codes");
    post_processor = target_post_processor.get();
  }
  if (options.truncation) {
    TruncationOptions p = *options.truncation;
    size_t n_added = post_processor ? post_processor->added_tokens(pair.has_value()) : 0;
    if (options.add_special_tokens && n_added > 0) {
      if (p.max_length < n_added)
        fail(ErrorKind::InvalidArgument, "max_length " + std::to_string(p.max_length) + " is smaller than the " +
                                             std::to_string(n_added) + " special tokens this tokenizer adds");
      p.max_length -= n_added;
    }
    if (p.stride > 0 && p.max_length > 0 && p.stride >= p.max_length)
      fail(ErrorKind::InvalidArgument, "truncation stride " + std::to_string(p.stride) +
                                           " must be smaller than the effective max length " +
                                           std::to_string(p.max_length) + " (max_length minus special tokens)");
    truncate_pair(enc, pair, p);
  }
  Enc out;
  if (post_processor) {
    out = post_processor->process(std::move(enc), std::move(pair), options.add_special_tokens);
  } else if (pair) {
    enc.set_sequence_id(0);
    pair->set_sequence_id(1);
    enc.merge_with(std::move(*pair), false);
    out = std::move(enc);
  } else {
    out = std::move(enc);
  }
  if (options.padding && options.padding->length) {
    auto pp = pad_params();
    if (!pp)
      fail(ErrorKind::InvalidArgument, "asking to pad but the tokenizer has no padding token; set pad_token");
    size_t len = *options.padding->length;
    size_t mult = options.padding->pad_to_multiple_of;
    if (mult > 0 && len % mult) len += mult - len % mult;
    out.pad(len, pp->pad_id, pp->pad_type_id, pp->pad_token, options.padding->direction);
  }
  return out;
}

namespace {

Encoding to_public(Enc&& e) {
  Encoding out;
  out.ids.assign(e.ids.begin(), e.ids.end());
  out.type_ids.assign(e.type_ids.begin(), e.type_ids.end());
  out.tokens = std::move(e.tokens);
  out.offsets = std::move(e.offsets);
  out.special_tokens_mask.assign(e.special_tokens_mask.begin(), e.special_tokens_mask.end());
  out.attention_mask.assign(e.attention_mask.begin(), e.attention_mask.end());
  out.word_ids = std::move(e.words);
  out.sequence_ids = e.sequence_ids();
  // Special and padding tokens belong to no sequence.
  for (size_t i = 0; i < out.sequence_ids.size(); ++i)
    if (out.special_tokens_mask[i] && out.word_ids[i] < 0 && out.offsets[i] == std::pair<size_t, size_t>{0, 0})
      out.sequence_ids[i] = -1;
  for (auto& o : e.overflowing) out.overflowing.push_back(to_public(std::move(o)));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Tokenizer

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json) {
  auto impl = std::make_unique<Impl>();
  load_tokenizer_json(*impl, tokenizer_json, "tokenizer.json");
  return Tokenizer(std::move(impl));
}

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  Enc e = impl_->post_process(impl_->encode_single(text, 0, options.char_offsets, options.target), std::nullopt, options);
  return to_public(std::move(e));
}

Encoding Tokenizer::encode_pair(std::string_view text, std::string_view pair, const EncodeOptions& options) const {
  Enc a = impl_->encode_single(text, 0, options.char_offsets, options.target);
  Enc b = impl_->encode_single(pair, 1, options.char_offsets, options.target);
  return to_public(impl_->post_process(std::move(a), std::move(b), options));
}

Encoding Tokenizer::encode_words(const std::vector<std::string>& words, const EncodeOptions& options) const {
  // tokenizers' encode of an InputSequence::PreTokenized: one encoding per word, merged
  // without shifting offsets.
  std::vector<Enc> parts;
  for (size_t i = 0; i < words.size(); ++i) {
    Enc e = impl_->encode_single(words[i], 0, options.char_offsets, options.target);
    e.words.assign(e.size(), int32_t(i));
    parts.push_back(std::move(e));
  }
  return to_public(impl_->post_process(Enc::merge(std::move(parts), false), std::nullopt, options));
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              const std::vector<std::string>& pairs,
                                              const EncodeOptions& options) const {
  if (!pairs.empty() && pairs.size() != texts.size())
    fail(ErrorKind::InvalidArgument, "encode_batch: got " + std::to_string(texts.size()) + " texts but " +
                                         std::to_string(pairs.size()) + " pairs");
  std::vector<Enc> encs(texts.size());
  std::vector<std::string> errors(texts.size());
  std::vector<int> kinds(texts.size(), -1);
  long n = long(texts.size());
#pragma omp parallel for schedule(dynamic, 4) if (n > 1)
  for (long i = 0; i < n; ++i) {
    try {
      Enc a = impl_->encode_single(texts[size_t(i)], 0, options.char_offsets, options.target);
      std::optional<Enc> b;
      if (!pairs.empty()) b = impl_->encode_single(pairs[size_t(i)], 1, options.char_offsets, options.target);
      encs[size_t(i)] = impl_->post_process(std::move(a), std::move(b), options);
    } catch (const Error& e) {
      errors[size_t(i)] = e.what();
      kinds[size_t(i)] = int(e.kind());
    } catch (const std::exception& e) {
      errors[size_t(i)] = e.what();
      kinds[size_t(i)] = int(ErrorKind::Internal);
    }
  }
  for (size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i] >= 0)
      throw Error(ErrorKind(kinds[i]), kinds.size() == 1 ? errors[i] : "input " + std::to_string(i) + ": " + errors[i]);
  if (options.padding && !encs.empty()) {
    auto pp = impl_->pad_params();
    if (!pp) fail(ErrorKind::InvalidArgument, "asking to pad but the tokenizer has no padding token; set pad_token");
    size_t len = 0;
    if (options.padding->length) {
      len = *options.padding->length;
    } else {
      for (const auto& e : encs) len = std::max(len, e.size());
    }
    size_t mult = options.padding->pad_to_multiple_of;
    if (mult > 0 && len % mult) len += mult - len % mult;
    for (auto& e : encs) e.pad(len, pp->pad_id, pp->pad_type_id, pp->pad_token, options.padding->direction);
  }
  std::vector<Encoding> out;
  out.reserve(encs.size());
  for (auto& e : encs) out.push_back(to_public(std::move(e)));
  return out;
}

namespace {

// The fast path of decode: ids -> tokens -> the decoder (and CLIP's suffix rule).
std::string decode_tokens(const Tokenizer::Impl& impl, const std::vector<int32_t>& ids, bool skip_special_tokens) {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t sid : ids) {
    if (sid < 0) continue;
    uint32_t id = uint32_t(sid);
    std::optional<std::string_view> tok;
    if (const AddedToken* a = impl.added.by_id(id)) tok = a->content;
    if (!tok) tok = impl.model->id_to_token(id);
    if (!tok) continue;
    if (skip_special_tokens && impl.added.is_special(*tok)) continue;
    tokens.emplace_back(*tok);
  }
  std::string text;
  if (impl.decoder) {
    text = impl.decoder->decode(std::move(tokens));
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) text += ' ';
      text += tokens[i];
    }
  }
  if (impl.decode_suffix_to_space && !impl.decode_suffix_to_space->empty()) {
    // CLIPTokenizerFast: text.replace(end_of_word_suffix, " ").strip()
    const std::string& suf = *impl.decode_suffix_to_space;
    std::string out;
    for (size_t pos = 0;;) {
      size_t f = text.find(suf, pos);
      if (f == std::string::npos) {
        out.append(text, pos, std::string::npos);
        break;
      }
      out.append(text, pos, f - pos);
      out += ' ';
      pos = f + suf.size();
    }
    std::u32string chars = u::decode_all(out);
    auto py_space = [](char32_t c) { return u::is_whitespace(c) || (c >= 0x1C && c <= 0x1F); };
    size_t b = 0, e = chars.size();
    while (b < e && py_space(chars[b])) ++b;
    while (e > b && py_space(chars[e - 1])) --e;
    text.clear();
    for (size_t i = b; i < e; ++i) u::append(text, chars[i]);
  }
  return text;
}

// transformers' clean_up_tokenization.
std::string clean_up_tokenization(std::string text) {
  {
    static const std::pair<const char*, const char*> kRules[] = {{" .", "."},   {" ?", "?"},   {" !", "!"},
                                                                 {" ,", ","},   {" ' ", "'"},  {" n't", "n't"},
                                                                 {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"},
                                                                 {" 're", "'re"}};
    for (const auto& [from, to] : kRules) {
      std::string out;
      size_t pos = 0, flen = std::char_traits<char>::length(from);
      while (true) {
        size_t f = text.find(from, pos);
        if (f == std::string::npos) break;
        out.append(text, pos, f - pos);
        out += to;
        pos = f + flen;
      }
      out.append(text, pos, std::string::npos);
      text = std::move(out);
    }
  }
  return text;
}

}  // namespace

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens,
                              bool clean_up_tokenization_spaces) const {
  std::string text;
  if (impl_->slow) {
    text = slow_spm_decode(*impl_, ids, skip_special_tokens);
  } else {
    text = decode_tokens(*impl_, ids, skip_special_tokens);
  }
  if (clean_up_tokenization_spaces) text = clean_up_tokenization(std::move(text));
  return text;
}


std::string Tokenizer::convert_tokens_to_string(const std::vector<std::string>& tokens) const {
  if (impl_->decoder) return impl_->decoder->decode(tokens);
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  return text;
}

std::optional<std::string> Tokenizer::continuing_subword_prefix() const {
  auto prefix = impl_->model->continuing_subword_prefix();
  if (prefix && prefix->empty()) return std::nullopt;
  return prefix;
}

std::optional<bool> Tokenizer::byte_level_add_prefix_space() const {
  if (!impl_->pre_tokenizer) return std::nullopt;
  const ByteLevelOptions* o = impl_->pre_tokenizer->byte_level_options();
  if (!o) return std::nullopt;
  return o->add_prefix_space;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto id = impl_->added.token_to_id(token, *impl_->model);
  if (!id) return std::nullopt;
  return int32_t(*id);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0) return std::nullopt;
  if (const AddedToken* a = impl_->added.by_id(uint32_t(id))) return a->content;
  if (auto t = impl_->model->id_to_token(uint32_t(id))) return std::string(*t);
  return std::nullopt;
}

const std::vector<std::string>& Tokenizer::language_codes() const { return impl_->lang.codes; }

int32_t Tokenizer::language_token_id(std::string_view code) const {
  return int32_t(text::language_token_id(*impl_, std::string(code)));
}

std::optional<std::string> Tokenizer::src_lang() const { return impl_->lang.src; }
std::optional<std::string> Tokenizer::tgt_lang() const { return impl_->lang.tgt; }

void Tokenizer::set_src_lang(const std::string& code) {
  if (impl_->lang.style == LangStyle::Marian)
    fail(ErrorKind::InvalidArgument, "MarianTokenizer has no src_lang: put the >>code<< at the start of the text");
  text::language_token(*impl_, code);  // refuses an unknown code before changing anything
  impl_->lang.src = code;
  apply_language_codes(*impl_);
}

void Tokenizer::set_tgt_lang(const std::string& code) {
  if (impl_->lang.style == LangStyle::Marian)
    fail(ErrorKind::InvalidArgument, "MarianTokenizer has no tgt_lang: the target side is target.spm");
  text::language_token(*impl_, code);
  impl_->lang.tgt = code;
  apply_language_codes(*impl_);
}

size_t Tokenizer::vocab_size() const {
  // tokenizers' get_vocab_size(with_added_tokens=true): model vocab + added tokens not in it.
  size_t n = impl_->model->vocab_size();
  for (const auto& [id, tok] : impl_->added.tokens_by_id())
    if (!impl_->model->token_to_id(tok.content)) ++n;
  return n;
}

int64_t Tokenizer::model_max_length() const { return impl_->model_max_length; }
std::optional<std::string> Tokenizer::embedded_chat_template() const { return impl_->chat_template; }

std::optional<int32_t> Tokenizer::pad_token_id() const {
  auto it = impl_->special_tokens.find("pad_token");
  if (it != impl_->special_tokens.end()) return token_to_id(it->second);
  if (impl_->file_pad) return int32_t(impl_->file_pad->pad_id);
  return std::nullopt;
}

std::optional<std::string> Tokenizer::special_token(std::string_view name) const {
  auto it = impl_->special_tokens.find(std::string(name));
  if (it == impl_->special_tokens.end()) return std::nullopt;
  return it->second;
}

size_t Tokenizer::num_special_tokens_to_add(bool pair) const {
  return impl_->post_processor ? impl_->post_processor->added_tokens(pair) : 0;
}

bool Tokenizer::clean_up_tokenization_spaces() const { return impl_->clean_up_tokenization_spaces; }
Side Tokenizer::padding_side() const { return impl_->padding_side; }
Side Tokenizer::truncation_side() const { return impl_->truncation_side; }
const std::vector<std::string>& Tokenizer::model_input_names() const { return impl_->model_input_names; }
const std::string& Tokenizer::tokenizer_class() const { return impl_->tokenizer_class; }
std::optional<TruncationOptions> Tokenizer::default_truncation() const { return impl_->file_truncation; }
std::optional<PaddingOptions> Tokenizer::default_padding() const { return impl_->file_padding; }

}  // namespace hfpipe::text
