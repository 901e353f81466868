// Folders without tokenizer.json: vocab.txt (BERT-style WordPiece) and vocab.json +
// merges.txt (GPT-2 / RoBERTa byte-level BPE), built the way transformers'
// convert_slow_tokenizer.py converts the slow tokenizers (BertConverter, MPNetConverter,
// GPT2Converter, RobertaConverter).
#include <cctype>
#include <unordered_set>

#include "text/json_util.h"
#include "core/error.h"
#include "text/tokenizer_impl.h"

namespace hfpipe::text {

namespace {

// BertTokenizer's load_vocab: one token per line (trailing "\n" removed), id = line number;
// a repeated token keeps its last line.
VocabTable read_vocab_txt(const std::filesystem::path& p) {
  std::string text = read_file(p);
  if (auto bad = unicode::first_invalid_utf8(text))
    fail(ErrorKind::CorruptFile, p.string() + ": not valid UTF-8 at byte " + std::to_string(*bad));
  VocabTable vocab;
  vocab.reserve(text.size() / 6, text.size());
  size_t start = 0;
  uint32_t id = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    // A line number is the id: refused before it could pass int32 (a 2^31-line file).
    if (id > kMaxTokenId) checked_token_id(id, p.string() + ": line " + std::to_string(uint64_t(id) + 1));
    vocab.insert(std::string_view(text).substr(start, nl - start), id++);
    start = nl + 1;
  }
  vocab.finalize();
  return vocab;
}

uint32_t vocab_id(const VocabTable& vocab, const std::string& token, const std::string& what) {
  if (const uint32_t* id = vocab.find(token)) return *id;
  fail(ErrorKind::CorruptFile, what + ": special token '" + token + "' is not in the vocabulary");
}

}  // namespace

void load_bert_vocab(Tokenizer::Impl& impl, const std::filesystem::path& vocab_txt, const BertVocabOptions& o) {
  VocabTable vocab = read_vocab_txt(vocab_txt);
  std::string what = vocab_txt.string();
  uint32_t cls_id = vocab_id(vocab, o.cls_token, what);
  uint32_t sep_id = vocab_id(vocab, o.sep_token, what);
  BertNormalizerOptions n;
  n.clean_text = true;
  n.handle_chinese_chars = o.tokenize_chinese_chars;
  n.strip_accents = o.strip_accents;
  n.lowercase = o.do_lower_case;
  impl.normalizer = make_bert_normalizer(n);
  impl.pre_tokenizer = make_bert_pre_tokenizer();
  impl.model = make_wordpiece(std::move(vocab), o.unk_token, "##", 100);
  std::string single = o.cls_token + ":0 $A:0 " + o.sep_token + ":0";
  std::string pair = o.mpnet ? single + " " + o.sep_token + ":0 $B:1 " + o.sep_token + ":1"
                             : single + " $B:1 " + o.sep_token + ":1";
  std::map<std::string, TemplateSpecialToken> specials;
  specials[o.cls_token] = TemplateSpecialToken{{cls_id}, {o.cls_token}};
  specials[o.sep_token] = TemplateSpecialToken{{sep_id}, {o.sep_token}};
  impl.post_processor = make_template_processing(parse_template(single, what), parse_template(pair, what),
                                                 std::move(specials), what);
  impl.decoder = make_wordpiece_decoder("##", true);
}

void load_byte_level_bpe(Tokenizer::Impl& impl, const std::filesystem::path& vocab_json,
                         const std::filesystem::path& merges_txt, const ByteLevelBpeOptions& o) {
  BpeOptions b;
  std::string where = vocab_json.string();
  VocabTable vocab;
  {
    std::string text = read_file(vocab_json);
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    simdjson::dom::element doc;
    if (auto err = parser.parse(padded).get(doc); err)
      json::corrupt(where, std::string("not valid JSON (") + simdjson::error_message(err) + ")");
    auto obj = json::as_object(doc, where);
    vocab.reserve(obj.size(), text.size());
    for (auto field : obj)
      vocab.insert(field.key, json::as_token_id(field.value, where + "[\"" + std::string(field.key) + "\"]"));
    vocab.finalize();
  }
  // GPT2Tokenizer: read().split("\n")[1:-1], each line split on whitespace; a repeated merge
  // keeps its first position.
  std::string text = read_file(merges_txt);
  std::vector<std::string_view> lines;
  {
    size_t start = 0;
    while (true) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) {
        lines.push_back(std::string_view(text).substr(start));
        break;
      }
      lines.push_back(std::string_view(text).substr(start, nl - start));
      start = nl + 1;
    }
  }
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  std::unordered_set<std::string> seen;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::vector<std::string_view> parts;
    std::string_view l = lines[i];
    size_t p = 0;
    while (p < l.size()) {
      while (p < l.size() && std::isspace(static_cast<unsigned char>(l[p]))) ++p;
      size_t q = p;
      while (q < l.size() && !std::isspace(static_cast<unsigned char>(l[q]))) ++q;
      if (q > p) parts.push_back(l.substr(p, q - p));
      p = q;
    }
    if (parts.size() != 2)
      fail(ErrorKind::CorruptFile, merges_txt.string() + ": line " + std::to_string(i + 1) +
                                       " is not a merge of two tokens");
    if (!seen.insert(std::string(parts[0]) + " " + std::string(parts[1])).second) continue;
    merges.emplace_back(parts[0], parts[1]);
  }
  b.continuing_subword_prefix = "";
  b.end_of_word_suffix = "";
  b.fuse_unk = false;
  impl.model = make_bpe(std::move(vocab), merges, std::move(b), where);
  ByteLevelOptions bl;
  bl.add_prefix_space = o.add_prefix_space;
  impl.pre_tokenizer = make_byte_level_pre_tokenizer(bl);
  impl.decoder = make_byte_level_decoder();
  auto id_of = [&](const std::string& tok) {
    auto id = impl.model->token_to_id(tok);
    if (!id) fail(ErrorKind::CorruptFile, where + ": special token '" + tok + "' is not in the vocabulary");
    return *id;
  };
  if (o.roberta) {
    RobertaOptions r;
    r.sep = {o.sep_token, id_of(o.sep_token)};
    r.cls = {o.cls_token, id_of(o.cls_token)};
    r.add_prefix_space = o.add_prefix_space;
    r.trim_offsets = true;
    impl.post_processor = make_roberta_processing(r);
  } else if (o.add_bos_token) {
    std::map<std::string, TemplateSpecialToken> specials;
    specials[o.bos_token] = TemplateSpecialToken{{id_of(o.bos_token)}, {o.bos_token}};
    impl.post_processor = make_template_processing(parse_template(o.bos_token + ":0 $A:0", where),
                                                   parse_template(o.bos_token + ":0 $A:0 $B:1", where),
                                                   std::move(specials), where);
  } else {
    impl.post_processor = make_byte_level_processing(false, true);
  }
}

}  // namespace hfpipe::text
