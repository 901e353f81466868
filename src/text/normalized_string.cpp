#include "text/normalized_string.h"

#include "core/error.h"

namespace hfpipe::text {

namespace u = unicode;

NormalizedString::NormalizedString(std::string_view original) : original_size_(original.size()), normalized_(original) {
  align_.resize(original.size());
  for (size_t i = 0; i < original.size();) {
    size_t len = u::utf8_len(static_cast<unsigned char>(original[i]));
    if (i + len > original.size()) len = original.size() - i;
    for (size_t k = 0; k < len; ++k) align_[i + k] = {uint32_t(i), uint32_t(i + len)};
    i += len;
  }
}

std::optional<Offsets> NormalizedString::normalized_to_original(size_t start, size_t end) const {
  if (start == end) return Offsets{start, end};
  if (start > end || end > align_.size()) return std::nullopt;
  return Offsets{align_[start].first, align_[end - 1].second};
}

std::optional<Offsets> NormalizedString::original_to_normalized(size_t start, size_t end) const {
  if (start == end) return Offsets{start, end};
  if (start > end) return std::nullopt;
  std::optional<size_t> s, e;
  for (size_t i = 0; i < align_.size(); ++i) {
    const auto& a = align_[i];
    if (end < a.second) break;
    if (!s && start <= a.first && a.first != a.second) s = i;
    e = i + 1;
  }
  if (s && e) return Offsets{*s, *e};
  if (s) return Offsets{*s, *s};
  if (e) return Offsets{*e, *e};
  return std::nullopt;
}

void NormalizedString::transform_range(size_t start, size_t end, const CharChanges& dest, size_t initial_offset) {
  // Characters of the replaced range are consumed from `cursor` on.
  size_t cursor = start;
  auto next_char_size = [&]() -> size_t {
    if (cursor >= end) return 0;
    size_t len = u::utf8_len(static_cast<unsigned char>(normalized_[cursor]));
    cursor += len;
    return len;
  };
  size_t initial_removed = 0;
  for (size_t i = 0; i < initial_offset; ++i) initial_removed += next_char_size();

  size_t offset = initial_removed + start;
  std::string out;
  out.reserve(end - start + dest.size());
  std::vector<std::pair<uint32_t, uint32_t>> new_align;
  new_align.reserve(end - start + dest.size());
  for (const auto& [c, change] : dest) {
    size_t idx = offset;
    std::pair<uint32_t, uint32_t> a;
    if (change > 0) {
      a = idx < 1 ? std::pair<uint32_t, uint32_t>{0, 0} : align_[idx - 1];
    } else {
      check(idx < align_.size(), ErrorKind::Internal, "NormalizedString::transform out of range");
      a = align_[idx];
    }
    size_t replaced = change <= 0 ? next_char_size() : 0;
    size_t removed = 0;
    if (change < 0)
      for (int k = 0; k < -change; ++k) removed += next_char_size();
    offset += replaced + removed;
    size_t before = out.size();
    u::append(out, c);
    new_align.insert(new_align.end(), out.size() - before, a);
  }
  normalized_.replace(start, end - start, out);
  align_.erase(align_.begin() + long(start), align_.begin() + long(end));
  align_.insert(align_.begin() + long(start), new_align.begin(), new_align.end());
}

void NormalizedString::transform(const CharChanges& dest, size_t initial_offset) {
  // original_to_normalized(0, original size): every alignment ends within the original, so
  // the range runs from the first non-empty alignment to the end.
  if (original_size_ == 0) {
    transform_range(0, 0, dest, initial_offset);
    return;
  }
  size_t first = 0;
  while (first < align_.size() && align_[first].first == align_[first].second) ++first;
  if (align_.empty()) return;
  auto range = first < align_.size() ? std::optional<Offsets>{{first, align_.size()}}
                                     : std::optional<Offsets>{{align_.size(), align_.size()}};
  if (!range) return;
  transform_range(range->first, range->second, dest, initial_offset);
}

NormalizedString NormalizedString::slice(size_t start, size_t end) const {
  NormalizedString out;
  auto orig = normalized_to_original(start, end);
  check(orig.has_value() && start <= end && end <= normalized_.size(), ErrorKind::Internal,
        "NormalizedString: bad slice");
  if (orig->first <= orig->second && orig->second <= original_size_) out.original_size_ = orig->second - orig->first;
  out.normalized_ = normalized_.substr(start, end - start);
  out.align_.reserve(end - start);
  uint32_t n_shift = uint32_t(orig->first);
  for (size_t i = start; i < end; ++i) out.align_.emplace_back(align_[i].first - n_shift, align_[i].second - n_shift);
  out.shift_ = shift_ + orig->first;
  return out;
}

std::vector<NormalizedString> NormalizedString::split(const Matches& matches, SplitBehavior behavior) const {
  std::vector<std::pair<Offsets, bool>> splits;  // (range, remove)
  splits.reserve(matches.size());
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& [o, m] : matches) splits.emplace_back(o, false);
      break;
    case SplitBehavior::Removed:
      splits = matches;
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const auto& [o, m] : matches) {
        if (m == prev && !splits.empty()) {
          splits.back().first.second = o.second;
        } else {
          splits.emplace_back(o, false);
        }
        prev = m;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const auto& [o, m] : matches) {
        if (m && !prev && !splits.empty()) {
          splits.back().first.second = o.second;
        } else {
          splits.emplace_back(o, false);
        }
        prev = m;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        const auto& [o, m] = *it;
        if (m && !prev && !splits.empty()) {
          splits.back().first.first = o.first;
        } else {
          splits.emplace_back(o, false);
        }
        prev = m;
      }
      std::reverse(splits.begin(), splits.end());
      break;
    }
  }
  std::vector<NormalizedString> out;
  out.reserve(splits.size());
  for (const auto& [o, remove] : splits)
    if (!remove) out.push_back(slice(o.first, o.second));
  return out;
}

void NormalizedString::unicode_form(bool compose, bool compat) {
  // ASCII is invariant under every normalisation form.
  bool ascii = true;
  for (unsigned char b : normalized_)
    if (b >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return;
  CharChanges dest = compose ? u::nfc_changes(normalized_, compat) : u::nfd_changes(normalized_, compat);
  transform(dest, 0);
}

void NormalizedString::lowercase() {
  // Fast path: every character maps to one character of the same UTF-8 length, which
  // transform() would turn into an in-place substitution with unchanged alignments.
  std::string out;
  out.reserve(normalized_.size());
  std::u32string tmp;
  bool simple = true;
  for (size_t i = 0; i < normalized_.size();) {
    unsigned char b = static_cast<unsigned char>(normalized_[i]);
    if (b < 0x80) {
      out.push_back(b >= 'A' && b <= 'Z' ? char(b + 32) : char(b));
      ++i;
      continue;
    }
    size_t len;
    char32_t c = u::decode(normalized_, i, &len);
    tmp.clear();
    u::to_lowercase(c, tmp);
    if (tmp.size() != 1 || u::utf8_len(tmp[0]) != len) {
      simple = false;
      break;
    }
    u::append(out, tmp[0]);
    i += len;
  }
  if (simple) {
    normalized_ = std::move(out);
    return;
  }
  CharChanges dest;
  dest.reserve(normalized_.size());
  for (size_t i = 0; i < normalized_.size();) {
    size_t len;
    char32_t c = u::decode(normalized_, i, &len);
    i += len;
    tmp.clear();
    u::to_lowercase(c, tmp);
    for (size_t k = 0; k < tmp.size(); ++k) dest.emplace_back(tmp[k], k == 0 ? 0 : 1);
  }
  transform(dest, 0);
}

void NormalizedString::uppercase() {
  CharChanges dest;
  std::u32string tmp;
  for (size_t i = 0; i < normalized_.size();) {
    size_t len;
    char32_t c = u::decode(normalized_, i, &len);
    i += len;
    tmp.clear();
    u::to_uppercase(c, tmp);
    for (size_t k = 0; k < tmp.size(); ++k) dest.emplace_back(tmp[k], k == 0 ? 0 : 1);
  }
  transform(dest, 0);
}

void NormalizedString::filter(const std::function<bool(char32_t)>& keep) {
  CharChanges dest;
  dest.reserve(normalized_.size());
  size_t leading_removed = 0;
  bool any_removed = false;
  for (size_t i = 0; i < normalized_.size();) {
    size_t len;
    char32_t c = u::decode(normalized_, i, &len);
    i += len;
    if (keep(c)) {
      dest.emplace_back(c, 0);
    } else {
      any_removed = true;
      if (dest.empty())
        ++leading_removed;
      else
        dest.back().second -= 1;
    }
  }
  if (!any_removed) return;
  transform(dest, leading_removed);
}

void NormalizedString::map(const std::function<char32_t(char32_t)>& f) {
  CharChanges dest;
  dest.reserve(normalized_.size());
  bool same_sizes = true;
  for (size_t i = 0; i < normalized_.size();) {
    size_t len;
    char32_t c = u::decode(normalized_, i, &len);
    i += len;
    char32_t m = f(c);
    same_sizes = same_sizes && u::utf8_len(m) == len;
    dest.emplace_back(m, 0);
  }
  if (same_sizes) {
    // One-for-one substitutions of equal size keep every alignment as it is.
    std::string out;
    out.reserve(normalized_.size());
    for (const auto& [c, change] : dest) u::append(out, c);
    normalized_ = std::move(out);
    return;
  }
  transform(dest, 0);
}

void NormalizedString::prepend(std::string_view s) {
  if (normalized_.empty()) return;
  size_t len;
  char32_t next = u::decode(normalized_, 0, &len);
  CharChanges dest;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    size_t l;
    char32_t c = u::decode(s, i, &l);
    i += l;
    dest.emplace_back(c, first ? 0 : 1);
    first = false;
  }
  dest.emplace_back(next, 1);
  transform_range(0, len, dest, 0);
}

void NormalizedString::append(std::string_view s) {
  if (normalized_.empty()) return;
  size_t b = normalized_.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(normalized_[b]) & 0xC0) == 0x80) --b;
  size_t len;
  char32_t prev = u::decode(normalized_, b, &len);
  CharChanges dest{{prev, 0}};
  for (size_t i = 0; i < s.size();) {
    size_t l;
    char32_t c = u::decode(s, i, &l);
    i += l;
    dest.emplace_back(c, 1);
  }
  transform_range(b, normalized_.size(), dest, 0);
}

void NormalizedString::replace(const Matches& matches, std::string_view content) {
  // One pass, equivalent to tokenizers' transform_range per match (which is quadratic on
  // long inputs): the replacement characters take the alignment of the last byte they
  // replace (of the byte before an empty match).
  bool any = false;
  for (const auto& m : matches) any = any || m.second;
  if (!any) return;
  std::string out;
  std::vector<std::pair<uint32_t, uint32_t>> align;
  out.reserve(normalized_.size() + 16);
  align.reserve(normalized_.size() + 16);
  size_t pos = 0;
  for (const auto& [o, is_match] : matches) {
    if (!is_match) continue;
    out.append(normalized_, pos, o.first - pos);
    align.insert(align.end(), align_.begin() + long(pos), align_.begin() + long(o.first));
    std::pair<uint32_t, uint32_t> a = o.second >= 1 ? align_[o.second - 1] : std::pair<uint32_t, uint32_t>{0, 0};
    out.append(content);
    align.insert(align.end(), content.size(), a);
    pos = o.second;
  }
  out.append(normalized_, pos, std::string::npos);
  align.insert(align.end(), align_.begin() + long(pos), align_.end());
  normalized_ = std::move(out);
  align_ = std::move(align);
}

void NormalizedString::strip(bool left, bool right) {
  std::u32string chars = u::decode_all(normalized_);
  size_t leading = 0, trailing = 0;
  if (left)
    while (leading < chars.size() && u::is_whitespace(chars[leading])) ++leading;
  if (right)
    while (trailing < chars.size() && u::is_whitespace(chars[chars.size() - 1 - trailing])) ++trailing;
  if (leading == 0 && trailing == 0) return;
  CharChanges dest;
  size_t n = chars.size();
  for (size_t i = 0; i < n; ++i) {
    if (i < leading || i + trailing >= n) continue;
    if (i + trailing + 1 == n)
      dest.emplace_back(chars[i], -int(trailing));
    else
      dest.emplace_back(chars[i], 0);
  }
  transform(dest, leading);
}

void NormalizedString::map_bytes(const std::string* table) {
  if (normalized_.empty()) return;
  if (align_[0].first == align_[0].second) {  // unusual alignments: take the general path
    CharChanges dest;
    for (size_t i = 0; i < normalized_.size();) {
      size_t len = u::utf8_len(static_cast<unsigned char>(normalized_[i]));
      for (size_t k = 0; k < len && i + k < normalized_.size(); ++k) {
        size_t l;
        dest.emplace_back(u::decode(table[static_cast<unsigned char>(normalized_[i + k])], 0, &l), k > 0 ? 1 : 0);
      }
      i += len;
    }
    transform(dest, 0);
    return;
  }
  std::string out;
  std::vector<std::pair<uint32_t, uint32_t>> align;
  out.reserve(normalized_.size() * 2);
  align.reserve(normalized_.size() * 2);
  for (size_t i = 0; i < normalized_.size();) {
    size_t len = u::utf8_len(static_cast<unsigned char>(normalized_[i]));
    auto a = align_[i];
    for (size_t k = 0; k < len && i + k < normalized_.size(); ++k) {
      const std::string& t = table[static_cast<unsigned char>(normalized_[i + k])];
      out += t;
      align.insert(align.end(), t.size(), a);
    }
    i += len;
  }
  normalized_ = std::move(out);
  align_ = std::move(align);
}

Matches find_char_matches(std::string_view s, const std::function<bool(char32_t)>& pred) {
  Matches out;
  size_t last_offset = 0, last_seen = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    char32_t c = u::decode(s, i, &len);
    last_seen = i + len;
    if (pred(c)) {
      if (last_offset < i) out.push_back({{last_offset, i}, false});
      out.push_back({{i, i + len}, true});
      last_offset = i + len;
    }
    i += len;
  }
  if (last_seen > last_offset) out.push_back({{last_offset, last_seen}, false});
  return out;
}

Matches invert_matches(Matches m) {
  for (auto& p : m) p.second = !p.second;
  return m;
}

}  // namespace hfpipe::text
