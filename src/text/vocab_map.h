// String -> id and id -> string tables shared by the models: open addressing over one
// array, keys hashed 8 bytes at a time (lookups of short tokens dominate encoding and load).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hfpipe::text {

inline uint64_t hash_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  }
  h ^= h >> 32;
  h *= 0x9E3779B97F4A7C15ULL;
  h ^= h >> 29;
  return h;
}

inline uint64_t mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDULL;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ULL;
  k ^= k >> 33;
  return k;
}

class VocabTable {
 public:
  VocabTable() = default;
  // Sizes the table for about `n` tokens of `bytes` total length (a hint).
  void reserve(size_t n, size_t bytes = 0) {
    size_t cap = 16;
    while (cap < n * 2 + 2) cap <<= 1;
    if (cap > slots_.size()) rehash(cap);
    arena_.reserve(bytes);
  }
  // Inserts a token; a repeated token keeps its last id, as a JSON object / Python dict does.
  void insert(std::string_view tok, uint32_t id) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    uint64_t h = hash_bytes(tok);
    uint32_t tag = uint32_t(h >> 32) | 1u;
    size_t i = size_t(h) & mask_;
    while (slots_[i].tag) {
      if (slots_[i].tag == tag && view(slots_[i]) == tok) {
        slots_[i].id = id;
        return;
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{tag, id, uint32_t(arena_.size()), uint32_t(tok.size()), head_of(tok)};
    arena_.append(tok);
    ++count_;
    if (tok.size() > max_len_) max_len_ = tok.size();
    rev_.clear();
    sparse_rev_.clear();
  }
  // Builds the id -> token index (after the last insert): a dense table, or a hash map when the
  // ids are sparse. tokenizers keeps ids in a hash map, so a vocab like {"a": 0, "b": 4000000000}
  // is valid; a dense table for it would be 16 GB (found by fuzz_tokenizer_json).
  void finalize() {
    uint32_t max_id = 0;
    for (const Slot& s : slots_)
      if (s.tag && s.id > max_id) max_id = s.id;
    rev_.clear();
    sparse_rev_.clear();
    const bool dense = count_ && size_t(max_id) < 4 * count_ + kDenseSlack;
    if (dense) rev_.assign(size_t(max_id) + 1, -1);
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].tag) continue;
      if (dense)
        rev_[slots_[i].id] = int32_t(i);
      else
        sparse_rev_[slots_[i].id] = int32_t(i);
    }
  }

  const uint32_t* find(std::string_view tok) const {
    if (slots_.empty()) return nullptr;
    uint64_t h = hash_bytes(tok);
    uint32_t tag = uint32_t(h >> 32) | 1u;
    uint64_t head = head_of(tok);
    size_t i = size_t(h) & mask_;
    while (slots_[i].tag) {
      const Slot& s = slots_[i];
      if (s.tag == tag && s.len == tok.size() && s.head == head &&
          (tok.size() <= 8 || std::memcmp(arena_.data() + s.off + 8, tok.data() + 8, tok.size() - 8) == 0))
        return &s.id;
      i = (i + 1) & mask_;
    }
    return nullptr;
  }
  // The token of `id`; nullopt when no token has that id.
  std::optional<std::string_view> token(uint32_t id) const {
    if (!sparse_rev_.empty()) {
      auto it = sparse_rev_.find(id);
      if (it == sparse_rev_.end()) return std::nullopt;
      return view(slots_[size_t(it->second)]);
    }
    if (id >= rev_.size() || rev_[id] < 0) return std::nullopt;
    return view(slots_[size_t(rev_[id])]);
  }
  size_t size() const { return count_; }
  size_t max_token_bytes() const { return max_len_; }

 private:
  struct Slot {
    uint32_t tag;  // high hash bits | 1; 0 = empty
    uint32_t id;
    uint32_t off;  // into arena_
    uint32_t len;
    uint64_t head;  // the first 8 bytes, zero-padded: short tokens compare without the arena
  };
  static uint64_t head_of(std::string_view t) {
    uint64_t h = 0;
    std::memcpy(&h, t.data(), t.size() < 8 ? t.size() : 8);
    return h;
  }
  std::string_view view(const Slot& s) const { return std::string_view(arena_.data() + s.off, s.len); }
  void rehash(size_t cap) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{0, 0, 0, 0, 0});
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (!s.tag) continue;
      size_t i = size_t(hash_bytes(view(s))) & mask_;
      while (slots_[i].tag) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
  std::string arena_;
  static constexpr size_t kDenseSlack = size_t(1) << 20;  // ids up to 4 x count + 1M: dense table
  std::vector<int32_t> rev_;
  std::unordered_map<uint32_t, int32_t> sparse_rev_;
  size_t max_len_ = 0;
};

// uint64 key -> value, open addressing (BPE merges: (left id, right id) -> (rank, new id)).
template <typename V>
class U64Map {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 2) cap <<= 1;
    keys_.assign(cap, kEmpty);
    values_.assign(cap, V{});
    mask_ = cap - 1;
  }
  // Inserts or overwrites.
  void set(uint64_t key, const V& v) {
    if ((size_ + 1) * 2 > keys_.size()) grow();
    size_t i = size_t(mix64(key)) & mask_;
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
    if (keys_[i] == kEmpty) ++size_;
    keys_[i] = key;
    values_[i] = v;
  }
  const V* find(uint64_t key) const {
    if (keys_.empty()) return nullptr;
    size_t i = size_t(mix64(key)) & mask_;
    while (keys_[i] != kEmpty) {
      if (keys_[i] == key) return &values_[i];
      i = (i + 1) & mask_;
    }
    return nullptr;
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;  // (0xFFFFFFFF, 0xFFFFFFFF) is never a pair of ids
  void grow() {
    std::vector<uint64_t> k = std::move(keys_);
    std::vector<V> v = std::move(values_);
    reserve(k.empty() ? 8 : k.size());
    size_ = 0;
    for (size_t i = 0; i < k.size(); ++i)
      if (k[i] != kEmpty) set(k[i], v[i]);
  }
  std::vector<uint64_t> keys_;
  std::vector<V> values_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// A byte trie over vocabulary pieces (node -> child through one hash probe per byte), for the
// Viterbi lattices of Unigram and of sentencepiece's own encoder: every piece that is a prefix
// of a string, in one pass.
class PieceTrie {
 public:
  PieceTrie() : ids_(1, -1) {}
  // A piece inserted again keeps its first id (sentencepiece's rule).
  void insert(std::string_view piece, uint32_t id) {
    uint32_t node = 0;
    for (unsigned char b : piece) {
      const uint64_t k = (uint64_t(node) << 8) | b;
      if (const uint32_t* c = children_.find(k)) {
        node = *c;
      } else {
        const auto n = uint32_t(ids_.size());
        ids_.push_back(-1);
        children_.set(k, n);
        node = n;
      }
    }
    if (ids_[node] < 0) ids_[node] = int64_t(id);
  }
  // Calls fn(length, id) for every piece that is a prefix of `s`, shortest first.
  template <typename F>
  void prefixes(std::string_view s, F&& fn) const {
    uint32_t node = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const uint32_t* c = children_.find((uint64_t(node) << 8) | static_cast<unsigned char>(s[i]));
      if (!c) return;
      node = *c;
      if (ids_[node] >= 0) fn(i + 1, uint32_t(ids_[node]));
    }
  }

 private:
  U64Map<uint32_t> children_;
  std::vector<int64_t> ids_;
};

}  // namespace hfpipe::text
