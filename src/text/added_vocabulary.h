// Added tokens (special or not) on top of the model's vocabulary: they are cut out of the
// input before normalisation (tokens with normalized=false) or from the normalised pieces
// (normalized=true), honouring single_word, lstrip and rstrip, as `tokenizers` does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "text/components.h"

namespace hfpipe::text {

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;

  bool operator==(const AddedToken&) const = default;
};

class AddedVocabulary {
 public:
  // Adds tokens; returns how many were new. Ids come from the model's vocabulary when the
  // content is there, else the next free id after it.
  // `where` names the file the tokens come from, for the error when a token's new id would
  // pass the int32 limit (token_id.h).
  size_t add_tokens(const std::vector<AddedToken>& tokens, const Model& model, const Normalizer* normalizer,
                    const std::string& where = "added tokens");

  std::optional<uint32_t> token_to_id(std::string_view token, const Model& model) const;
  const AddedToken* by_id(uint32_t id) const;
  bool is_special(std::string_view token) const { return special_set_.count(std::string(token)) > 0; }
  size_t size() const { return map_.size(); }
  const std::unordered_map<uint32_t, AddedToken>& tokens_by_id() const { return map_r_; }

  // Splits `sequence` on added tokens and normalises the rest.
  PreTokenizedString extract_and_normalize(const Normalizer* normalizer, std::string_view sequence) const;

 private:
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, uint32_t>> next;  // sorted by byte
      int32_t pattern = -1;
    };
    std::vector<Node> nodes{Node{}};
    std::vector<uint32_t> ids;  // pattern index -> token id
    bool first_byte[256] = {};
    void add(std::string_view pattern, uint32_t id);
    // Leftmost-longest, non-overlapping matches: (pattern index, start, end).
    std::vector<std::tuple<uint32_t, size_t, size_t>> find_all(std::string_view s) const;
  };

  void refresh(const Model& model, const Normalizer* normalizer);
  std::vector<std::pair<std::optional<uint32_t>, Offsets>> find_matches(std::string_view s, const Trie& trie) const;
  std::vector<NormalizedString> split_with_indices(NormalizedString n, const Trie& trie,
                                                   std::vector<std::optional<Token>>* tokens) const;

  std::unordered_map<std::string, uint32_t> map_;
  std::unordered_map<uint32_t, AddedToken> map_r_;
  std::vector<AddedToken> added_;
  std::vector<AddedToken> special_;
  std::unordered_set<std::string> special_set_;
  Trie trie_;             // non-normalised tokens, matched on the raw input
  Trie normalized_trie_;  // normalised tokens, matched on normalised pieces
};

}  // namespace hfpipe::text
