// NormalizedString: a piece of the input with its normalised form and, for every byte of
// the normalised form, the byte range of the original it came from. Every normaliser and
// pre-tokeniser edits it through transform(), which keeps that alignment exactly as the
// `tokenizers` library does, so token offsets map back to the original text identically.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/unicode.h"

namespace hfpipe::text {

using Offsets = std::pair<size_t, size_t>;

// What split() does with the delimiters it finds.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// A pattern match list: consecutive (byte range, is_match) pieces covering the whole string.
using Matches = std::vector<std::pair<Offsets, bool>>;

class NormalizedString {
 public:
  NormalizedString() = default;
  explicit NormalizedString(std::string_view original);

  const std::string& get() const { return normalized_; }
  size_t original_size() const { return original_size_; }
  size_t size() const { return normalized_.size(); }
  bool empty() const { return normalized_.empty(); }
  // Byte range of this piece in the whole original input.
  Offsets offsets_original() const { return {shift_, shift_ + original_size_}; }

  // Normalised byte range -> original byte range (relative to this piece), as
  // tokenizers' convert_offsets(Range::Normalized). nullopt when out of range.
  std::optional<Offsets> normalized_to_original(size_t start, size_t end) const;
  // Original byte range -> normalised byte range (convert_offsets(Range::Original)).
  std::optional<Offsets> original_to_normalized(size_t start, size_t end) const;

  // Replaces normalised bytes [start, end) by `dest`, see CharChanges; `initial_offset`
  // characters at the start of the range are removed first.
  void transform_range(size_t start, size_t end, const CharChanges& dest, size_t initial_offset);
  // transform_range over the whole string (as tokenizers' transform(Range::Original(..))).
  void transform(const CharChanges& dest, size_t initial_offset);

  // A sub-piece by normalised byte range (tokenizers' slice(Range::Normalized)).
  NormalizedString slice(size_t start, size_t end) const;
  std::vector<NormalizedString> split(const Matches& matches, SplitBehavior behavior) const;

  // Normalisations.
  void nfd() { unicode_form(false, false); }
  void nfkd() { unicode_form(false, true); }
  void nfc() { unicode_form(true, false); }
  void nfkc() { unicode_form(true, true); }
  void lowercase();
  void uppercase();
  void filter(const std::function<bool(char32_t)>& keep);
  void map(const std::function<char32_t(char32_t)>& f);
  void prepend(std::string_view s);
  void append(std::string_view s);
  void replace(const Matches& matches, std::string_view content);
  void strip(bool left, bool right);
  // Replaces every byte b by table[b] (ByteLevel), each output byte aligned like the
  // character b belongs to; the same result as transform() with (first byte 0, others +1).
  void map_bytes(const std::string* table);

  // Internal access for the engine and its tests.
  const std::vector<std::pair<uint32_t, uint32_t>>& alignments() const { return align_; }

 private:
  void unicode_form(bool compose, bool compat);

  size_t original_size_ = 0;  // the original text itself is not needed: offsets suffice
  std::string normalized_;
  std::vector<std::pair<uint32_t, uint32_t>> align_;  // per normalised byte
  size_t shift_ = 0;
};

// The pieces of `s` a pattern finds, as (range, is_match) covering all of `s`.
Matches find_char_matches(std::string_view s, const std::function<bool(char32_t)>& pred);
Matches invert_matches(Matches m);

}  // namespace hfpipe::text
