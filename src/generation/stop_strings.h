// StopStringCriteria (transformers generation/stopping_criteria.py): a row stops at the token
// that completes one of the stop strings, i.e. when the text of its last tokens contains a stop
// string that ends inside the last token (overhangs on either side allowed). Like transformers,
// the text is that of each token on its own ("clean" vocabulary: the decoder's string of the
// token after a fixed prefix, so "Ġ"/"▁" become spaces) and only the last max(len(stop string))
// tokens are looked at; transformers' tensor formulation of this test is equivalent to the
// plain string search done here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace hfpipe::generation {

class StopStrings {
 public:
  StopStrings() = default;
  // An empty list makes a criteria that never stops. If no token of the vocabulary can end
  // any of the strings, Error(InvalidArgument) as transformers raises.
  StopStrings(const text::Tokenizer& tokenizer, std::vector<std::string> stop_strings);
  // The same over a given clean vocabulary (token strings indexed by id), for tests.
  StopStrings(std::vector<std::string> token_strings, std::vector<std::string> stop_strings);

  bool empty() const { return stops_.empty(); }
  // Whether `ids` (a whole row, prompt included) ends with a completed stop string.
  bool matches(const std::vector<int32_t>& ids) const;

 private:
  void check_reachable() const;

  std::vector<std::string> tokens_;  // clean token strings by id
  std::vector<std::string> stops_;
  size_t window_ = 0;  // the longest stop string, in characters: transformers' token window
};

}  // namespace hfpipe::generation
