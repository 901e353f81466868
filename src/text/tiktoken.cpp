// tiktoken BPE rank files ("<base64 token> <rank>" per line: Llama 3's tokenizer.model,
// Whisper's *.tiktoken), converted as transformers' TikTokenConverter does: a byte-level BPE
// whose merges are every split of a token into two tokens, ordered by the token's rank,
// with ignore_merges, a Split on the tokenizer's regex, ByteLevel without a regex, the
// ByteLevel decoder and ByteLevel post-processing without offset trimming.
#include <algorithm>
#include <unordered_map>

#include "text/sentencepiece_model.h"
#include "core/error.h"
#include "text/token_id.h"
#include "text/tokenizer_impl.h"

namespace hfpipe::text {

namespace {

std::string byte_level_string(std::string_view bytes) {
  std::string s;
  for (unsigned char b : bytes) unicode::append(s, byte_to_char(b));
  return s;
}

// (token bytes, rank) in file order.
std::vector<std::pair<std::string, uint32_t>> read_ranks(std::string_view data, const std::string& where) {
  std::vector<std::pair<std::string, uint32_t>> out;
  size_t line_no = 0;
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) nl = data.size();
    std::string_view line = data.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    std::string here = where + ": line " + std::to_string(line_no);
    if (sp == std::string_view::npos) fail(ErrorKind::CorruptFile, here + ": expected '<base64 token> <rank>'");
    std::string_view rank_s = line.substr(sp + 1);
    if (rank_s.empty() || rank_s.size() > 10 ||
        !std::all_of(rank_s.begin(), rank_s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail(ErrorKind::CorruptFile, here + ": the rank is not a number");
    uint64_t rank = std::stoull(std::string(rank_s));
    checked_token_id(rank, here, "rank (token id)");
    std::string token = base64_decode(line.substr(0, sp), here);
    // An empty token ("=": Whisper's multilingual.tiktoken ends with one at rank 50256) is kept:
    // tiktoken and TikTokenConverter read it as b"" and give that rank to the empty string,
    // which encoding never produces but decoding and the ids of later tokens see.
    out.emplace_back(std::move(token), uint32_t(rank));
  }
  if (out.empty()) fail(ErrorKind::CorruptFile, where + ": no tokens");
  return out;
}

}  // namespace

void load_tiktoken(Tokenizer::Impl& impl, std::string_view data, const std::string& where,
                   const std::vector<std::string>& special_tokens, const std::string& pattern) {
  auto ranks = read_ranks(data, where);
  // A repeated token keeps its last rank (a dict), at its first position.
  std::unordered_map<std::string_view, uint32_t> rank_of;
  std::vector<std::string_view> order;
  for (const auto& [tok, rank] : ranks) {
    auto [it, fresh] = rank_of.emplace(tok, rank);
    if (fresh)
      order.push_back(tok);
    else
      it->second = rank;
  }
  struct M {
    std::string_view l, r;
    uint32_t rank, rank_l, rank_r;
  };
  std::vector<M> merges;
  VocabTable vocab;
  vocab.reserve(order.size(), data.size());
  for (std::string_view tok : order) {
    uint32_t rank = rank_of[tok];
    vocab.insert(byte_level_string(tok), rank);
    if (tok.size() == 1) continue;
    size_t first = merges.size();
    for (size_t i = 1; i < tok.size(); ++i) {
      auto l = rank_of.find(tok.substr(0, i));
      auto r = rank_of.find(tok.substr(i));
      if (l != rank_of.end() && r != rank_of.end()) merges.push_back(M{tok.substr(0, i), tok.substr(i), rank, l->second, r->second});
    }
    std::stable_sort(merges.begin() + long(first), merges.end(),
                     [](const M& a, const M& b) { return std::tie(a.rank_l, a.rank_r) < std::tie(b.rank_l, b.rank_r); });
  }
  vocab.finalize();
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) { return a.rank < b.rank; });
  std::vector<std::string> strings;
  strings.reserve(merges.size() * 2);
  for (const auto& m : merges) {
    strings.push_back(byte_level_string(m.l));
    strings.push_back(byte_level_string(m.r));
  }
  std::vector<std::pair<std::string_view, std::string_view>> views;
  views.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) views.emplace_back(strings[2 * i], strings[2 * i + 1]);
  BpeOptions b;
  b.ignore_merges = true;
  impl.model = make_bpe(std::move(vocab), views, b, where);

  std::vector<std::unique_ptr<PreTokenizer>> pre;
  pre.push_back(make_split_pre_tokenizer(pattern.empty() ? kTiktokenPattern : pattern, SplitBehavior::Isolated, where));
  ByteLevelOptions bl;
  bl.add_prefix_space = false;
  bl.use_regex = false;
  pre.push_back(make_byte_level_pre_tokenizer(bl));
  impl.pre_tokenizer = make_sequence_pre_tokenizer(std::move(pre));
  impl.decoder = make_byte_level_decoder();
  std::vector<AddedToken> added;
  for (const auto& s : special_tokens) {
    AddedToken t;
    t.content = s;
    t.normalized = false;
    t.special = true;
    added.push_back(t);
  }
  impl.add_tokens(added, where);
  impl.post_processor = make_byte_level_processing(false, true);
}

}  // namespace hfpipe::text
