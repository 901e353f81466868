// Enc: tokenizers' Encoding operations — truncation with overflowing windows, merging
// (with the overflow cross product), padding, sequence ids.
#include <algorithm>

#include "text/components.h"

namespace hfpipe::text {

void Enc::reserve(size_t n) {
  ids.reserve(n);
  type_ids.reserve(n);
  tokens.reserve(n);
  words.reserve(n);
  offsets.reserve(n);
  special_tokens_mask.reserve(n);
  attention_mask.reserve(n);
}

void Enc::push(uint32_t id, uint32_t type_id, std::string token, int32_t word, Offsets off, uint32_t special,
               uint32_t attention) {
  ids.push_back(id);
  type_ids.push_back(type_id);
  tokens.push_back(std::move(token));
  words.push_back(word);
  offsets.push_back(off);
  special_tokens_mask.push_back(special);
  attention_mask.push_back(attention);
}

std::vector<int32_t> Enc::sequence_ids() const {
  std::vector<int32_t> out(size(), -1);
  if (sequence_ranges.empty()) {
    std::fill(out.begin(), out.end(), 0);
    return out;
  }
  for (const auto& [seq, range] : sequence_ranges)
    for (size_t i = range.first; i < range.second && i < out.size(); ++i) out[i] = int32_t(seq);
  return out;
}

namespace {
Enc slice_enc(const Enc& e, size_t start, size_t stop) {
  Enc o;
  auto cp = [&](auto& dst, const auto& src) { dst.assign(src.begin() + long(start), src.begin() + long(stop)); };
  cp(o.ids, e.ids);
  cp(o.type_ids, e.type_ids);
  cp(o.tokens, e.tokens);
  cp(o.words, e.words);
  cp(o.offsets, e.offsets);
  cp(o.special_tokens_mask, e.special_tokens_mask);
  cp(o.attention_mask, e.attention_mask);
  return o;
}
}  // namespace

void Enc::truncate(size_t max_len, size_t stride, Side direction) {
  size_t len = size();
  if (max_len >= len) return;
  if (max_len == 0) {
    Enc moved = std::move(*this);
    *this = Enc();
    overflowing.push_back(std::move(moved));
    return;
  }
  // stride < max_len is checked by the caller.
  sequence_ranges.clear();
  size_t offset = max_len - stride;
  std::vector<std::pair<size_t, size_t>> parts;
  bool end = false;
  if (direction == Side::Right) {
    for (size_t start = 0; start < len && !end; start += offset) {
      size_t stop = std::min(start + max_len, len);
      end = stop == len;
      parts.emplace_back(start, stop);
    }
  } else {
    // (0..len).rev().step_by(offset)
    for (size_t k = 0;; ++k) {
      if (k * offset >= len) break;
      size_t stop = len - 1 - k * offset + 1;
      size_t start = stop < max_len ? 0 : stop - max_len;
      if (start < stop && !end) {
        end = start == 0;
        parts.emplace_back(start, stop);
      }
    }
  }
  Enc result = slice_enc(*this, parts[0].first, parts[0].second);
  for (size_t i = 1; i < parts.size(); ++i) result.overflowing.push_back(slice_enc(*this, parts[i].first, parts[i].second));
  *this = std::move(result);
}

void Enc::merge_with(Enc pair, bool growing_offsets) {
  std::vector<Enc> overflowings;
  for (const Enc& self_o : overflowing) {
    Enc n = self_o;
    n.merge_with(pair, growing_offsets);
    overflowings.push_back(std::move(n));
    for (const Enc& other_o : pair.overflowing) {
      Enc m = self_o;
      m.merge_with(other_o, growing_offsets);
      overflowings.push_back(std::move(m));
    }
  }
  for (const Enc& other_o : pair.overflowing) {
    Enc n = *this;
    n.merge_with(other_o, growing_offsets);
    overflowings.push_back(std::move(n));
  }
  size_t original_len = size();
  for (const auto& [seq, range] : pair.sequence_ranges)
    sequence_ranges[seq] = {original_len + range.first, original_len + range.second};
  size_t starting_offset = growing_offsets && !offsets.empty() ? offsets.back().second : 0;
  ids.insert(ids.end(), pair.ids.begin(), pair.ids.end());
  type_ids.insert(type_ids.end(), pair.type_ids.begin(), pair.type_ids.end());
  tokens.insert(tokens.end(), std::make_move_iterator(pair.tokens.begin()), std::make_move_iterator(pair.tokens.end()));
  words.insert(words.end(), pair.words.begin(), pair.words.end());
  for (const auto& o : pair.offsets) offsets.emplace_back(o.first + starting_offset, o.second + starting_offset);
  special_tokens_mask.insert(special_tokens_mask.end(), pair.special_tokens_mask.begin(), pair.special_tokens_mask.end());
  attention_mask.insert(attention_mask.end(), pair.attention_mask.begin(), pair.attention_mask.end());
  overflowing = std::move(overflowings);
}

Enc Enc::merge(std::vector<Enc> encodings, bool growing_offsets) {
  Enc out;
  for (auto& e : encodings) out.merge_with(std::move(e), growing_offsets);
  return out;
}

void Enc::pad(size_t target_length, uint32_t pad_id, uint32_t pad_type_id, const std::string& pad_token,
              Side direction) {
  for (auto& o : overflowing) o.pad(target_length, pad_id, pad_type_id, pad_token, direction);
  if (size() >= target_length) return;
  size_t n = target_length - size();
  auto fill = [&](auto& v, auto value) {
    if (direction == Side::Left)
      v.insert(v.begin(), n, value);
    else
      v.insert(v.end(), n, value);
  };
  fill(ids, pad_id);
  fill(type_ids, pad_type_id);
  fill(tokens, pad_token);
  fill(words, int32_t(-1));
  fill(offsets, Offsets{0, 0});
  fill(special_tokens_mask, uint32_t(1));
  fill(attention_mask, uint32_t(0));
  if (direction == Side::Left)
    for (auto& [seq, range] : sequence_ranges) range = {range.first + n, range.second + n};
}

Enc PostProcessor::process(Enc encoding, std::optional<Enc> pair, bool add_special_tokens) const {
  std::vector<Enc> encs;
  encs.push_back(std::move(encoding));
  if (pair) encs.push_back(std::move(*pair));
  // As tokenizers' PostProcessor::process: the overflowing windows belong to their sequence too.
  for (size_t i = 0; i < encs.size(); ++i) {
    encs[i].set_sequence_id(i);
    for (Enc& o : encs[i].overflowing) o.set_sequence_id(i);
  }
  return Enc::merge(process_encodings(std::move(encs), add_special_tokens), false);
}

}  // namespace hfpipe::text
