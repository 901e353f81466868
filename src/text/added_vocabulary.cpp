#include "text/added_vocabulary.h"

#include <algorithm>
#include <tuple>

#include "text/token_id.h"

namespace hfpipe::text {

namespace u = unicode;

void AddedVocabulary::Trie::add(std::string_view pattern, uint32_t id) {
  if (pattern.empty()) return;
  size_t node = 0;
  for (unsigned char b : pattern) {
    auto& next = nodes[node].next;
    auto it = std::lower_bound(next.begin(), next.end(), b,
                               [](const std::pair<unsigned char, uint32_t>& p, unsigned char v) { return p.first < v; });
    if (it != next.end() && it->first == b) {
      node = it->second;
    } else {
      uint32_t child = uint32_t(nodes.size());
      next.insert(it, {b, child});
      nodes.emplace_back();
      node = child;
    }
  }
  first_byte[static_cast<unsigned char>(pattern[0])] = true;
  if (nodes[node].pattern < 0) {
    nodes[node].pattern = int32_t(ids.size());
    ids.push_back(id);
  }
}

std::vector<std::tuple<uint32_t, size_t, size_t>> AddedVocabulary::Trie::find_all(std::string_view s) const {
  std::vector<std::tuple<uint32_t, size_t, size_t>> out;
  if (ids.empty()) return out;
  size_t i = 0;
  while (i < s.size()) {
    if (!first_byte[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    size_t node = 0, best_end = 0;
    int32_t best = -1;
    for (size_t j = i; j < s.size(); ++j) {
      const auto& next = nodes[node].next;
      unsigned char b = static_cast<unsigned char>(s[j]);
      auto it = std::lower_bound(next.begin(), next.end(), b,
                                 [](const std::pair<unsigned char, uint32_t>& p, unsigned char v) { return p.first < v; });
      if (it == next.end() || it->first != b) break;
      node = it->second;
      if (nodes[node].pattern >= 0) {
        best = nodes[node].pattern;
        best_end = j + 1;
      }
    }
    if (best >= 0) {
      out.emplace_back(uint32_t(best), i, best_end);
      i = best_end;
    } else {
      ++i;
    }
  }
  return out;
}

std::optional<uint32_t> AddedVocabulary::token_to_id(std::string_view token, const Model& model) const {
  auto it = map_.find(std::string(token));
  if (it != map_.end()) return it->second;
  return model.token_to_id(token);
}

const AddedToken* AddedVocabulary::by_id(uint32_t id) const {
  auto it = map_r_.find(id);
  return it == map_r_.end() ? nullptr : &it->second;
}

size_t AddedVocabulary::add_tokens(const std::vector<AddedToken>& tokens, const Model& model,
                                   const Normalizer* normalizer, const std::string& where) {
  for (const auto& t : tokens) {
    if (t.special && !t.content.empty() && !special_set_.count(t.content)) {
      special_.push_back(t);
      special_set_.insert(t.content);
    }
  }
  size_t ignored = 0;
  // The largest id given out so far. As in tokenizers 0.22, a token that is in the model's
  // vocabulary keeps its model id and does not count: with the model holding "b" at 7 of 3
  // entries, adding ["b", "X"] gives X the id 3, not 8.
  std::optional<uint32_t> max_id;
  for (const auto& [k, v] : map_)
    if (!model.token_to_id(k)) max_id = std::max(max_id.value_or(0), v);
  for (const auto& t : tokens) {
    // tokenizers: ignored when an identical AddedToken (all flags) is already there.
    bool known = false;
    if (auto it = map_.find(t.content); it != map_.end()) {
      auto r = map_r_.find(it->second);
      known = r != map_r_.end() && r->second == t;
    }
    if (t.content.empty() || known) {
      ++ignored;
      continue;
    }
    uint32_t new_id;
    if (auto id = token_to_id(t.content, model)) {
      new_id = *id;
    } else {
      // The next id after the model's vocabulary and every id given out, in 64 bits so that
      // the int32 check sees it before it could wrap.
      uint64_t vocab_size = model.vocab_size();
      uint64_t next = !max_id ? vocab_size : (*max_id >= vocab_size || vocab_size == 0) ? uint64_t(*max_id) + 1 : vocab_size;
      new_id = checked_token_id(next, where + ": added token '" + t.content + "'");
      max_id = std::max(max_id.value_or(0), new_id);
    }
    map_[t.content] = new_id;
    map_r_[new_id] = t;
    if (!special_set_.count(t.content)) added_.push_back(t);
  }
  refresh(model, normalizer);
  return tokens.size() - ignored;
}

void AddedVocabulary::refresh(const Model& model, const Normalizer* normalizer) {
  trie_ = Trie();
  normalized_trie_ = Trie();
  auto add = [&](const AddedToken& t) {
    auto id = token_to_id(t.content, model);
    if (!id) return;
    if (!t.normalized) {
      trie_.add(t.content, *id);
    } else {
      NormalizedString n(t.content);
      if (normalizer) normalizer->normalize(n);
      normalized_trie_.add(n.get(), *id);
    }
  };
  for (const auto& t : special_) add(t);
  for (const auto& t : added_) add(t);
}

std::vector<std::pair<std::optional<uint32_t>, Offsets>> AddedVocabulary::find_matches(std::string_view s,
                                                                                      const Trie& trie) const {
  std::vector<std::pair<std::optional<uint32_t>, Offsets>> splits;
  if (s.empty()) {
    splits.push_back({std::nullopt, {0, 0}});
    return splits;
  }
  auto last_char = [&](size_t end) -> std::optional<char32_t> {
    if (end == 0) return std::nullopt;
    size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    size_t len;
    return u::decode(s, b, &len);
  };
  size_t start_offset = 0;
  for (const auto& [pat, mstart, mend] : trie.find_all(s)) {
    size_t start = mstart, stop = mend;
    uint32_t id = trie.ids[pat];
    const AddedToken* tok = by_id(id);
    if (!tok) continue;
    if (tok->single_word) {
      auto before = last_char(start);
      bool start_space = start == 0 || !(before && u::is_word_char(*before));
      bool stop_space = true;
      if (stop < s.size()) {
        size_t len;
        stop_space = !u::is_word_char(u::decode(s, stop, &len));
      }
      if (!start_space || !stop_space) continue;
    }
    if (tok->lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        auto c = last_char(new_start);
        if (!c || !u::is_whitespace(*c)) break;
        new_start -= u::utf8_len(*c);
      }
      start = std::max(new_start, start_offset);
    }
    if (tok->rstrip) {
      while (stop < s.size()) {
        size_t len;
        char32_t c = u::decode(s, stop, &len);
        if (!u::is_whitespace(c)) break;
        stop += len;
      }
    }
    if (start_offset < start) splits.push_back({std::nullopt, {start_offset, start}});
    splits.push_back({id, {start, stop}});
    start_offset = stop;
  }
  if (start_offset != s.size()) splits.push_back({std::nullopt, {start_offset, s.size()}});
  return splits;
}

std::vector<NormalizedString> AddedVocabulary::split_with_indices(NormalizedString n, const Trie& trie,
                                                                  std::vector<std::optional<Token>>* tokens) const {
  std::vector<NormalizedString> out;
  for (const auto& [id, off] : find_matches(n.get(), trie)) {
    NormalizedString piece = n.slice(off.first, off.second);
    if (piece.empty()) continue;
    if (id) {
      std::string value = piece.get();
      size_t len = value.size();
      tokens->push_back(Token{*id, std::move(value), {0, len}});
    } else {
      tokens->push_back(std::nullopt);
    }
    out.push_back(std::move(piece));
  }
  return out;
}

PreTokenizedString AddedVocabulary::extract_and_normalize(const Normalizer* normalizer,
                                                         std::string_view sequence) const {
  std::vector<Split> splits;
  // 1. Non-normalised tokens, on the raw input.
  std::vector<std::optional<Token>> toks;
  std::vector<NormalizedString> pieces = split_with_indices(NormalizedString(sequence), trie_, &toks);
  // 2. Normalise the remaining pieces, then extract the normalised tokens from them.
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (toks[i]) {
      splits.push_back(Split{std::move(pieces[i]), std::vector<Token>{std::move(*toks[i])}});
      continue;
    }
    NormalizedString n = std::move(pieces[i]);
    if (normalizer) normalizer->normalize(n);
    std::vector<std::optional<Token>> inner;
    std::vector<NormalizedString> sub = split_with_indices(std::move(n), normalized_trie_, &inner);
    for (size_t k = 0; k < sub.size(); ++k) {
      if (inner[k])
        splits.push_back(Split{std::move(sub[k]), std::vector<Token>{std::move(*inner[k])}});
      else
        splits.push_back(Split{std::move(sub[k]), std::nullopt});
    }
  }
  return PreTokenizedString(std::move(splits));
}

}  // namespace hfpipe::text
