// Post-processors: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel,
// Sequence.
#include <memory>

#include "text/components.h"
#include "text/json_util.h"

namespace hfpipe::text {

namespace u = unicode;

void byte_level_process_offsets(Enc& enc, bool add_prefix_space) {
  const char32_t g = byte_to_char(' ');
  auto is_space = [g](char32_t c) { return c == g || u::is_whitespace(c); };
  for (size_t i = 0; i < enc.size(); ++i) {
    const std::string& tok = enc.tokens[i];
    auto& off = enc.offsets[i];
    std::u32string chars = u::decode_all(tok);
    size_t leading = 0, trailing = 0;
    while (leading < chars.size() && is_space(chars[leading])) ++leading;
    while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
    if (leading == 0 && trailing == 0) continue;
    if (leading > 0) {
      bool is_first = i == 0 || off.first == 0;
      if (is_first && add_prefix_space && leading == 1) leading = 0;
      off.first = std::min(off.first + leading, off.second);
    }
    if (trailing > 0 && off.second >= trailing) off.second = std::max(off.second - trailing, off.first);
  }
}

namespace {

// [cls] A [sep]  /  B [sep]  (Bert)  or  [cls] A [sep]  /  [sep] B [sep]  (Roberta).
Enc wrap(const Enc& e, const std::pair<std::string, uint32_t>* before, const std::pair<std::string, uint32_t>& after,
         size_t seq, bool zero_type_ids, uint32_t specials_type, const std::vector<uint32_t>* type_ids_override) {
  Enc o;
  o.reserve(e.size() + 2);
  if (before) o.push(before->second, specials_type, before->first, -1, {0, 0}, 1);
  for (size_t i = 0; i < e.size(); ++i)
    o.push(e.ids[i], zero_type_ids ? 0 : (type_ids_override ? (*type_ids_override)[i] : e.type_ids[i]), e.tokens[i],
           e.words[i], e.offsets[i], 0);
  o.push(after.second, specials_type, after.first, -1, {0, 0}, 1);
  size_t start = before ? 1 : 0;
  o.sequence_ranges[seq] = {start, start + e.size()};
  return o;
}

class BertProcessing final : public PostProcessor {
 public:
  BertProcessing(std::pair<std::string, uint32_t> sep, std::pair<std::string, uint32_t> cls)
      : sep_(std::move(sep)), cls_(std::move(cls)) {}
  size_t added_tokens(bool is_pair) const override { return is_pair ? 3 : 2; }
  std::vector<Enc> process_encodings(std::vector<Enc> encs, bool add_special_tokens) const override {
    if (!add_special_tokens) return encs;
    std::vector<Enc> out;
    for (size_t i = 0; i < encs.size(); ++i) {
      Enc& e = encs[i];
      Enc n;
      if (i == 0) {
        n = wrap(e, &cls_, sep_, 0, false, 0, nullptr);
        for (const Enc& o : e.overflowing) n.overflowing.push_back(wrap(o, &cls_, sep_, 0, false, 0, nullptr));
      } else {
        n = wrap(e, nullptr, sep_, 1, false, 1, nullptr);
        for (const Enc& o : e.overflowing) n.overflowing.push_back(wrap(o, nullptr, sep_, 1, false, 1, nullptr));
      }
      out.push_back(std::move(n));
    }
    return out;
  }

 private:
  std::pair<std::string, uint32_t> sep_, cls_;
};

class RobertaProcessing final : public PostProcessor {
 public:
  explicit RobertaProcessing(const RobertaOptions& o) : o_(o) {}
  size_t added_tokens(bool is_pair) const override { return is_pair ? 4 : 2; }
  const RobertaOptions* roberta_options() const override { return &o_; }
  std::unique_ptr<PostProcessor> with_roberta_options(const RobertaOptions& o) const override {
    return std::make_unique<RobertaProcessing>(o);
  }
  std::vector<Enc> process_encodings(std::vector<Enc> encs, bool add_special_tokens) const override {
    if (o_.trim_offsets) {
      for (Enc& e : encs) {
        byte_level_process_offsets(e, o_.add_prefix_space);
        for (Enc& o : e.overflowing) byte_level_process_offsets(o, o_.add_prefix_space);
      }
    }
    for (Enc& e : encs) e.set_type_ids(0);
    if (!add_special_tokens) return encs;
    std::vector<Enc> out;
    for (size_t i = 0; i < encs.size(); ++i) {
      Enc& e = encs[i];
      Enc n;
      if (i == 0) {
        n = wrap(e, &o_.cls, o_.sep, 0, false, 0, nullptr);
        for (const Enc& o : e.overflowing) n.overflowing.push_back(wrap(o, &o_.cls, o_.sep, 0, false, 0, nullptr));
      } else {
        n = wrap(e, &o_.sep, o_.sep, 1, true, 0, nullptr);
        for (const Enc& o : e.overflowing) n.overflowing.push_back(wrap(o, &o_.sep, o_.sep, 1, true, 0, nullptr));
      }
      out.push_back(std::move(n));
    }
    return out;
  }

 private:
  RobertaOptions o_;
};

class TemplateProcessing final : public PostProcessor {
 public:
  TemplateProcessing(std::vector<TemplatePiece> single, std::vector<TemplatePiece> pair,
                     std::map<std::string, TemplateSpecialToken> specials, const std::string& where)
      : single_(std::move(single)), pair_(std::move(pair)), specials_(std::move(specials)) {
    auto count = [&](const std::vector<TemplatePiece>& t) {
      size_t n = 0;
      for (const auto& p : t) {
        if (p.is_sequence) continue;
        auto it = specials_.find(p.special_id);
        if (it == specials_.end())
          fail(ErrorKind::CorruptFile, where + ": missing special token '" + p.special_id + "' in special_tokens");
        n += it->second.ids.size();
      }
      return n;
    };
    added_single_ = count(single_);
    added_pair_ = count(pair_);
    for (const auto& [k, v] : specials_)
      if (v.ids.size() != v.tokens.size())
        fail(ErrorKind::CorruptFile, where + ": special token '" + k + "' has different numbers of ids and tokens");
  }
  size_t added_tokens(bool is_pair) const override { return is_pair ? added_pair_ : added_single_; }

  std::vector<Enc> process_encodings(std::vector<Enc> encs, bool add_special_tokens) const override {
    const auto& tpl = encs.size() == 2 ? pair_ : single_;
    std::vector<Enc> out;
    for (const auto& p : tpl) {
      if (p.is_sequence) {
        size_t i = p.sequence;
        if (i >= encs.size()) fail(ErrorKind::InvalidArgument, "TemplateProcessing: template expects a pair");
        Enc& e = encs[i];
        e.set_type_ids(p.type_id);
        e.set_sequence_id(i);
        out.push_back(e);
      } else if (add_special_tokens) {
        const auto& tok = specials_.at(p.special_id);
        Enc s;
        for (size_t k = 0; k < tok.ids.size(); ++k) s.push(tok.ids[k], p.type_id, tok.tokens[k], -1, {0, 0}, 1);
        out.push_back(std::move(s));
      }
    }
    return out;
  }

 private:
  std::vector<TemplatePiece> single_, pair_;
  std::map<std::string, TemplateSpecialToken> specials_;
  size_t added_single_ = 0, added_pair_ = 0;
};

class ByteLevelProcessing final : public PostProcessor {
 public:
  ByteLevelProcessing(bool trim_offsets, bool add_prefix_space) : trim_(trim_offsets), aps_(add_prefix_space) {}
  size_t added_tokens(bool) const override { return 0; }
  std::vector<Enc> process_encodings(std::vector<Enc> encs, bool) const override {
    if (trim_) {
      for (Enc& e : encs) {
        byte_level_process_offsets(e, aps_);
        for (Enc& o : e.overflowing) byte_level_process_offsets(o, aps_);
      }
    }
    return encs;
  }

 private:
  bool trim_, aps_;
};

class SequenceProcessing final : public PostProcessor {
 public:
  explicit SequenceProcessing(std::vector<std::unique_ptr<PostProcessor>> items) : items_(std::move(items)) {}
  size_t added_tokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : items_) n += p->added_tokens(is_pair);
    return n;
  }
  std::vector<Enc> process_encodings(std::vector<Enc> encs, bool add_special_tokens) const override {
    for (const auto& p : items_) encs = p->process_encodings(std::move(encs), add_special_tokens);
    return encs;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

std::pair<std::string, uint32_t> parse_token_pair(const JsonValue& v, const std::string& where) {
  auto a = json::as_array(v, where);
  if (a.size() != 2) json::corrupt(where, "expected [token, id]");
  auto it = a.begin();
  std::string tok(json::as_string(*it, where));
  ++it;
  return {tok, json::as_token_id(*it, where)};
}

std::vector<TemplatePiece> parse_pieces(const JsonValue& v, const std::string& where) {
  if (v.is_string()) return parse_template(std::string(json::as_string(v, where)), where);
  std::vector<TemplatePiece> out;
  size_t i = 0;
  for (auto p : json::as_array(v, where)) {
    std::string here = where + "[" + std::to_string(i++) + "]";
    TemplatePiece piece;
    if (auto s = json::member(p, "Sequence")) {
      piece.is_sequence = true;
      std::string id = json::require_string(*s, "id", here + ".Sequence");
      if (id != "A" && id != "B") json::corrupt(here + ".Sequence.id", "expected \"A\" or \"B\"");
      piece.sequence = id == "A" ? 0 : 1;
      piece.type_id = json::as_type_id(json::required(*s, "type_id", here + ".Sequence"), here + ".Sequence.type_id");
    } else if (auto t = json::member(p, "SpecialToken")) {
      piece.is_sequence = false;
      piece.special_id = json::require_string(*t, "id", here + ".SpecialToken");
      piece.type_id =
          json::as_type_id(json::required(*t, "type_id", here + ".SpecialToken"), here + ".SpecialToken.type_id");
    } else {
      json::corrupt(here, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    out.push_back(std::move(piece));
  }
  return out;
}

}  // namespace

std::vector<TemplatePiece> parse_template(const std::string& s, const std::string& where) {
  std::vector<TemplatePiece> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    std::string part = s.substr(i, j - i);
    i = j + 1;
    if (part.empty()) {
      if (j >= s.size()) break;
      json::corrupt(where, "empty piece in template '" + s + "'");
    }
    TemplatePiece p;
    std::string name = part;
    uint32_t type_id = 0;
    size_t colon = part.rfind(':');
    if (colon != std::string::npos && colon + 1 < part.size() &&
        part.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      name = part.substr(0, colon);
      type_id = uint32_t(std::stoul(part.substr(colon + 1)));
    }
    if (!name.empty() && name[0] == '$') {
      p.is_sequence = true;
      std::string rest = name.substr(1);
      if (rest.empty() || rest == "A") {
        p.sequence = 0;
      } else if (rest == "B") {
        p.sequence = 1;
      } else if (rest.find_first_not_of("0123456789") == std::string::npos) {
        p.sequence = 0;
        type_id = uint32_t(std::stoul(rest));
      } else {
        json::corrupt(where, "bad sequence piece '" + part + "'");
      }
    } else {
      p.is_sequence = false;
      p.special_id = name;
    }
    p.type_id = type_id;
    out.push_back(std::move(p));
    if (j >= s.size()) break;
  }
  return out;
}

std::unique_ptr<PostProcessor> make_template_processing(std::vector<TemplatePiece> single,
                                                        std::vector<TemplatePiece> pair,
                                                        std::map<std::string, TemplateSpecialToken> special_tokens,
                                                        const std::string& where) {
  return std::make_unique<TemplateProcessing>(std::move(single), std::move(pair), std::move(special_tokens), where);
}
std::unique_ptr<PostProcessor> make_roberta_processing(const RobertaOptions& o) {
  return std::make_unique<RobertaProcessing>(o);
}
std::unique_ptr<PostProcessor> make_byte_level_processing(bool trim_offsets, bool add_prefix_space) {
  return std::make_unique<ByteLevelProcessing>(trim_offsets, add_prefix_space);
}

std::unique_ptr<PostProcessor> make_post_processor(const JsonValue& v, const std::string& where) {
  std::string type = json::type_of(v, where);
  if (type == "BertProcessing")
    return std::make_unique<BertProcessing>(parse_token_pair(json::required(v, "sep", where), where + ".sep"),
                                            parse_token_pair(json::required(v, "cls", where), where + ".cls"));
  if (type == "RobertaProcessing") {
    RobertaOptions o;
    if (auto s = json::member(v, "sep")) o.sep = parse_token_pair(*s, where + ".sep");
    if (auto c = json::member(v, "cls")) o.cls = parse_token_pair(*c, where + ".cls");
    o.trim_offsets = json::get_bool(v, "trim_offsets", true, where);
    o.add_prefix_space = json::get_bool(v, "add_prefix_space", true, where);
    return make_roberta_processing(o);
  }
  if (type == "ByteLevel")
    return make_byte_level_processing(json::get_bool(v, "trim_offsets", true, where),
                                      json::get_bool(v, "add_prefix_space", true, where));
  if (type == "TemplateProcessing") {
    std::map<std::string, TemplateSpecialToken> specials;
    if (auto st = json::member(v, "special_tokens")) {
      std::string sw = where + ".special_tokens";
      if (st->is_array()) {
        for (auto t : json::as_array(*st, sw)) {
          std::string id = json::require_string(t, "id", sw);
          TemplateSpecialToken tok;
          for (auto x : json::as_array(json::required(t, "ids", sw), sw + ".ids")) tok.ids.push_back(json::as_token_id(x, sw + ".ids"));
          for (auto x : json::as_array(json::required(t, "tokens", sw), sw + ".tokens"))
            tok.tokens.emplace_back(json::as_string(x, sw));
          specials[id] = std::move(tok);
        }
      } else {
        for (auto field : json::as_object(*st, sw)) {
          std::string here = sw + "[\"" + std::string(field.key) + "\"]";
          TemplateSpecialToken tok;
          for (auto x : json::as_array(json::required(field.value, "ids", here), here + ".ids"))
            tok.ids.push_back(json::as_token_id(x, here + ".ids"));
          for (auto x : json::as_array(json::required(field.value, "tokens", here), here + ".tokens"))
            tok.tokens.emplace_back(json::as_string(x, here + ".tokens"));
          specials[std::string(field.key)] = std::move(tok);
        }
      }
    }
    return make_template_processing(parse_pieces(json::required(v, "single", where), where + ".single"),
                                    parse_pieces(json::required(v, "pair", where), where + ".pair"),
                                    std::move(specials), where);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> items;
    size_t i = 0;
    for (auto e : json::as_array(json::required(v, "processors", where), where + ".processors"))
      items.push_back(make_post_processor(e, where + ".processors[" + std::to_string(i++) + "]"));
    return std::make_unique<SequenceProcessing>(std::move(items));
  }
  fail(ErrorKind::UnsupportedModel,
       where + ": post-processor type '" + type +
           "' is not supported; supported: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel, Sequence");
}

}  // namespace hfpipe::text
