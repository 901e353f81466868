// Token ids read from tokenizer files (text/token_id.h). The `tokenizers` library keeps ids as
// u32; hfpipe's Encoding and models hold int32. So every path that reads an id either takes it
// exactly (up to 2^31 - 1) or refuses it at load with a CorruptFile naming the id and the file;
// none may wrap. What the library itself accepts and refuses (tokenizers 0.22) is noted per case;
// tests/python/test_tokenizer_token_ids.py compares the JSON cases with it directly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/sentencepiece_model.h"
#include "text/token_id.h"
#include "text/tokenizer.h"
#include "text/tokenizer_impl.h"

using hfpipe::Error;
using hfpipe::ErrorKind;
using namespace hfpipe::text;

namespace {

using Ids = std::vector<int32_t>;

template <typename F>
void expect_corrupt(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "expected an hfpipe::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::CorruptFile) << e.what();
    for (const auto& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

// A WordLevel tokenizer.json around `vocab` (a JSON object) with extra top-level members.
std::string word_level(const std::string& vocab, const std::string& extra = "") {
  return R"({"pre_tokenizer":{"type":"WhitespaceSplit"},"model":{"type":"WordLevel","unk_token":"[UNK]","vocab":)" +
         vocab + "}" + (extra.empty() ? "" : "," + extra) + "}";
}

std::string added(const std::string& content, const std::string& id = "0") {
  return R"({"id":)" + id + R"(,"content":")" + content +
         R"(","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true})";
}

// A scratch folder, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("hfpipe-token-ids-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& data) const {
    std::ofstream(path / name, std::ios::binary) << data;
  }
};

// Protobuf pieces for a hand-made sentencepiece ModelProto.
std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += char(0x80 | (v & 0x7F));
    v >>= 7;
  }
  return s + char(v);
}
std::string field_varint(int field, uint64_t v) { return varint(uint64_t(field) << 3) + varint(v); }
std::string field_bytes(int field, const std::string& b) { return varint(uint64_t(field) << 3 | 2) + varint(b.size()) + b; }
std::string spm_model(uint64_t unk_id_varint) {
  std::string m;
  for (const char* p : {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a"}) m += field_bytes(1, field_bytes(1, p));
  return m + field_bytes(2, field_varint(3, 1) + field_varint(40, unk_id_varint));  // Unigram, unk_id
}

}  // namespace

TEST(TextTokenIds, LargestInt32IdIsTakenExactly) {
  // tokenizers: the same ids (2^31 - 1 is a valid u32).
  Tokenizer tok = Tokenizer::from_json(word_level(R"({"[UNK]":0,"a":2147483647})"));
  EXPECT_EQ(tok.encode("a b").ids, (Ids{2147483647, 0}));
  EXPECT_EQ(tok.token_to_id("a"), 2147483647);
  EXPECT_EQ(tok.decode({2147483647}), "a");
}

TEST(TextTokenIds, ModelVocabIdPastInt32IsRefusedNamingIdAndFile) {
  // tokenizers takes 2^31 .. 2^32 - 1 (u32); hfpipe refuses them instead of wrapping them to
  // negative int32 ids (which it did for the WordLevel and BPE vocabularies).
  for (const std::string& model :
       {std::string(R"({"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":2147483648}})"),
        std::string(R"({"type":"BPE","vocab":{"a":0,"b":2147483648},"merges":[]})"),
        std::string(R"({"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":4294967295}})")})
    expect_corrupt([&] { Tokenizer::from_json(R"({"model":)" + model + "}"); },
                   {"tokenizer.json", "model", "larger than 2147483647"});
  expect_corrupt([] { Tokenizer::from_json(word_level(R"({"[UNK]":0,"a":2147483648})")); }, {"2147483648", "[\"a\"]"});

  TempDir dir("vocab");
  dir.write("tokenizer.json", word_level(R"({"[UNK]":0,"a":3000000000})"));
  expect_corrupt([&] { Tokenizer::from_folder(dir.path); }, {(dir.path / "tokenizer.json").string(), "3000000000"});
}

TEST(TextTokenIds, ModelVocabIdMustBeAU32Integer) {
  // tokenizers (serde, u32): "invalid type: floating point `5.0`" / "invalid value: integer `-1`".
  // hfpipe gave 5.0 the id 0 (the float passed the check, its value was dropped).
  expect_corrupt([] { Tokenizer::from_json(word_level(R"({"[UNK]":0,"a":5.0})")); }, {"[\"a\"]", "expected a token id"});
  expect_corrupt([] { Tokenizer::from_json(word_level(R"({"[UNK]":0,"a":-1})")); }, {"[\"a\"]", "negative"});
  expect_corrupt([] { Tokenizer::from_json(word_level(R"({"[UNK]":0,"a":4294967296})")); }, {"4294967296"});
}

TEST(TextTokenIds, AddedTokenIdIsReadAsU32AndIgnored) {
  // tokenizers reads added_tokens[].id as a u32 and then gives the token its model id or the
  // next free one: 4294967295 is accepted (and ignored), 2^32 and -1 are refused.
  Tokenizer tok = Tokenizer::from_json(word_level(R"({"[UNK]":0,"a":1})", R"("added_tokens":[)" + added("[X]", "4294967295") + "]"));
  EXPECT_EQ(tok.encode("a [X]").ids, (Ids{1, 2}));
  expect_corrupt([] { Tokenizer::from_json(word_level(R"({"[UNK]":0})", R"("added_tokens":[)" + added("[X]", "4294967296") + "]")); },
                 {"added_tokens[0].id"});
  expect_corrupt([] { Tokenizer::from_json(word_level(R"({"[UNK]":0})", R"("added_tokens":[)" + added("[X]", "-1") + "]")); },
                 {"added_tokens[0].id"});
}

TEST(TextTokenIds, NewAddedTokenIdsIgnoreModelIdsOfAddedTokens) {
  // tokenizers 0.22: an added token already in the model keeps its model id, and the next new
  // token still starts at the model's size (3), not after that id (8). With the model token
  // at 2^31 - 1 the old rule gave [X] the id 2^31 (wrapped to a negative int32).
  Tokenizer tok = Tokenizer::from_json(
      word_level(R"({"[UNK]":0,"a":1,"b":7})", R"("added_tokens":[)" + added("b") + "," + added("[X]") + "," + added("[Y]") + "]"));
  EXPECT_EQ(tok.encode("b [X] [Y]").ids, (Ids{7, 3, 4}));
  Tokenizer sparse = Tokenizer::from_json(
      word_level(R"({"[UNK]":0,"a":2147483647})", R"("added_tokens":[)" + added("a") + "," + added("[X]") + "]"));
  EXPECT_EQ(sparse.encode("a [X]").ids, (Ids{2147483647, 2}));
}

TEST(TextTokenIds, PostProcessorIdsPastInt32AreRefused) {
  // tokenizers: u32 ids and type ids (2^31 accepted, 2^32 refused); hfpipe refuses from 2^31.
  const std::string vocab = R"({"[UNK]":0,"a":1})";
  expect_corrupt([&] {
    Tokenizer::from_json(word_level(vocab, R"("post_processor":{"type":"BertProcessing","sep":["[SEP]",2147483648],"cls":["[CLS]",1]})"));
  }, {"post_processor", "2147483648"});
  auto templ = [&](const std::string& ids, const std::string& type_id) {
    return word_level(vocab, R"("post_processor":{"type":"TemplateProcessing",
      "single":[{"SpecialToken":{"id":"[CLS]","type_id":)" + type_id + R"(}},{"Sequence":{"id":"A","type_id":0}}],
      "pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],
      "special_tokens":{"[CLS]":{"id":"[CLS]","ids":[)" + ids + R"(],"tokens":["[CLS]"]}}})");
  };
  EXPECT_EQ(Tokenizer::from_json(templ("2147483647", "2147483647")).encode("a").ids, (Ids{2147483647, 1}));
  EXPECT_EQ(Tokenizer::from_json(templ("2147483647", "2147483647")).encode("a").type_ids, (Ids{2147483647, 0}));
  expect_corrupt([&] { Tokenizer::from_json(templ("2147483648", "0")); }, {"special_tokens", "ids", "token id 2147483648"});
  expect_corrupt([&] { Tokenizer::from_json(templ("2", "2147483648")); }, {"type_id", "type id 2147483648"});
  expect_corrupt([&] { Tokenizer::from_json(templ("2.5", "0")); }, {"special_tokens", "expected a token id"});
}

TEST(TextTokenIds, PaddingIdsAreCheckedNotWrapped) {
  // padding.pad_id was read as int64 and cast to uint32: -1 became 4294967295 (an int32 -1
  // in the encoding), 2^32 + 5 became 5. tokenizers refuses -1 and 2^32 + 5 (u32).
  auto padded = [](const std::string& pad_id, const std::string& pad_type_id) {
    return word_level(R"({"[UNK]":0,"a":1})", R"("padding":{"strategy":{"Fixed":3},"direction":"Right","pad_to_multiple_of":null,
      "pad_id":)" + pad_id + R"(,"pad_type_id":)" + pad_type_id + R"(,"pad_token":"[PAD]"})");
  };
  Tokenizer tok = Tokenizer::from_json(padded("2147483647", "1"));
  EXPECT_EQ(tok.pad_token_id(), 2147483647);
  EncodeOptions o;
  o.padding = tok.default_padding();  // the file's padding (Fixed 3)
  Encoding e = tok.encode("a", o);
  EXPECT_EQ(e.ids, (Ids{1, 2147483647, 2147483647}));
  EXPECT_EQ(e.type_ids, (Ids{0, 1, 1}));
  expect_corrupt([&] { Tokenizer::from_json(padded("-1", "0")); }, {"padding.pad_id", "negative"});
  expect_corrupt([&] { Tokenizer::from_json(padded("4294967301", "0")); }, {"padding.pad_id", "4294967301"});
  expect_corrupt([&] { Tokenizer::from_json(padded("0", "2147483648")); }, {"padding.pad_type_id", "type id 2147483648"});
}

TEST(TextTokenIds, UnigramUnkIdPastInt32IsRefused) {
  // tokenizers: unk_id is a usize checked against the vocabulary (UnkIdNotInVocabulary).
  expect_corrupt([] {
    Tokenizer::from_json(R"({"model":{"type":"Unigram","unk_id":4294967296,"vocab":[["<unk>",0.0],["a",-1.0]]}})");
  }, {"unk_id", "4294967296"});
  expect_corrupt([] {
    Tokenizer::from_json(R"({"model":{"type":"Unigram","unk_id":1.0,"vocab":[["<unk>",0.0],["a",-1.0]]}})");
  }, {"unk_id"});
}

TEST(TextTokenIds, PositionalVocabulariesStopAtInt32) {
  // vocab.txt lines, Unigram / sentencepiece pieces and tiktoken's special tokens take their
  // position as the id; a file with 2^31 + 1 entries (gigabytes) cannot be a test fixture,
  // so the check they share is tested at its boundary.
  EXPECT_NO_THROW(check_vocab_size(uint64_t(1) << 31, "vocab.txt"));
  expect_corrupt([] { check_vocab_size((uint64_t(1) << 31) + 1, "big/vocab.txt"); }, {"big/vocab.txt", "token id 2147483648"});
  EXPECT_EQ(checked_token_id(2147483647, "f"), 2147483647u);
}

TEST(TextTokenIds, ByteLevelVocabJsonIdPastInt32IsRefused) {
  // GPT-2's vocab.json + merges.txt (the slow-tokenizer conversion passes the dict to the
  // library's BPE, which takes u32): refused from 2^31, naming the file.
  TempDir dir("gpt2");
  dir.write("vocab.json", R"({"a":0,"b":1,"ab":2147483648})");
  dir.write("merges.txt", "#version: 0.2\na b\n");
  expect_corrupt([&] { Tokenizer::from_folder(dir.path); }, {(dir.path / "vocab.json").string(), "[\"ab\"]", "2147483648"});
}

TEST(TextTokenIds, TiktokenRankPastInt32IsRefused) {
  // A rank is the token's id; it was checked against 2^32 only, then held in the int32 ids.
  TempDir dir("tiktoken");
  dir.write("tokenizer.model", "YQ== 0\nYg== 2147483648\n");  // "a" 0, "b" 2^31
  expect_corrupt([&] { Tokenizer::from_folder(dir.path); }, {(dir.path / "tokenizer.model").string(), "line 2", "2147483648"});
  dir.write("tokenizer.model", "YQ== 0\nYg== 2147483647\n");
  EXPECT_EQ(Tokenizer::from_folder(dir.path).encode("b").ids, (Ids{2147483647}));
}

TEST(TextTokenIds, SentencepieceUnkIdVarintMustBeAnInt32) {
  // protobuf's reader keeps the low 32 bits of an int32 field, so unk_id 2^32 + 1 read as 1;
  // no writer makes such a varint, and it is refused. A sign-extended -1 still reads as -1
  // (then out of range for the converter).
  EXPECT_EQ(read_sentencepiece_model(spm_model(0), "m.model").unk_id, 0);
  EXPECT_EQ(read_sentencepiece_model(spm_model(~uint64_t(0)), "m.model").unk_id, -1);
  expect_corrupt([] { read_sentencepiece_model(spm_model((uint64_t(1) << 32) + 1), "m.model"); },
                 {"m.model", "unk_id 4294967297 is not a 32-bit integer"});
  expect_corrupt([] {
    Tokenizer::Impl i;
    load_sentencepiece(i, read_sentencepiece_model(spm_model(~uint64_t(0)), "m.model"), {}, "m.model");
  }, {"m.model", "unk_id"});
}

TEST(TextTokenIds, T5ExtraIdsCountIsBounded) {
  // tokenizer_config.json's extra_ids adds that many <extra_id_N> tokens; 10^12 reserved a
  // vector of 10^12 entries (std::length_error or bad_alloc, not an hfpipe::Error).
  SpmConvertOptions o;
  o.flavor = SpmFlavor::T5;
  o.extra_ids = size_t(1) << 40;
  Tokenizer::Impl impl;
  expect_corrupt([&] { load_sentencepiece(impl, read_sentencepiece_model(spm_model(0), "spiece.model"), o, "spiece.model"); },
                 {"spiece.model", "extra_ids 1099511627776"});
  o.extra_ids = 100;
  Tokenizer::Impl ok;
  load_sentencepiece(ok, read_sentencepiece_model(spm_model(0), "spiece.model"), o, "spiece.model");
  EXPECT_EQ(ok.model->vocab_size(), 104u);
}

// Counts and lengths are usize in the library, whose serde refuses -1; cast to size_t they
// used to become ~2^64 (a pad_to_multiple_of of -1 would pad every encoding towards it).
TEST(TokenizerCounts, NegativeLengthsAndCountsAreRefused) {
  const std::string vocab = R"({"[UNK]":0,"a":1})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("truncation":{"max_length":-1,"stride":0,"strategy":"LongestFirst","direction":"Right"})", "max_length"},
      {R"("truncation":{"max_length":8,"stride":-2,"strategy":"LongestFirst","direction":"Right"})", "stride"},
      {R"("padding":{"strategy":{"Fixed":-4},"direction":"Right","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"[UNK]"})",
       "Fixed"},
      {R"("padding":{"strategy":"BatchLongest","direction":"Right","pad_to_multiple_of":-1,"pad_id":0,"pad_type_id":0,"pad_token":"[UNK]"})",
       "pad_to_multiple_of"},
  };
  for (const auto& [extra, field] : cases)
    expect_corrupt([&] { Tokenizer::from_json(word_level(vocab, extra)); }, {field, "non-negative"});
  expect_corrupt(
      [&] {
        Tokenizer::from_json(R"({"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0},)"
                             R"("max_input_chars_per_word":-1}})");
      },
      {"max_input_chars_per_word", "non-negative"});
}
