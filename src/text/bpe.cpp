// Model: BPE (merges by rank; unk / fuse_unk, byte_fallback, continuing_subword_prefix,
// end_of_word_suffix, ignore_merges; dropout is ignored), with a per-thread word cache.
#include <atomic>
#include <cstdio>
#include <memory>
#include <queue>
#include <unordered_map>

#include "text/components.h"
#include "text/json_util.h"
#include "text/vocab_map.h"

namespace hfpipe::text {

VocabTable parse_vocab_object(const JsonValue& v, const std::string& where);

namespace {

constexpr size_t kCacheCapacity = 10000;
constexpr size_t kCacheMaxWordBytes = 256;

struct Symbol {
  uint32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;
};

struct Merge {
  uint32_t pos;
  uint32_t rank;
  uint32_t new_id;
  // Min-heap on (rank, pos).
  bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

using Piece = std::pair<uint32_t, uint32_t>;  // (id, byte length)

struct MergeValue {
  uint32_t rank;
  uint32_t new_id;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return size_t(hash_bytes(s)); }
};

std::atomic<uint64_t> g_next_model_id{1};

class Bpe final : public Model {
 public:
  Bpe(VocabTable vocab, const std::vector<std::pair<std::string_view, std::string_view>>& merges, BpeOptions o,
      const std::string& where)
      : vocab_(std::move(vocab)),
        unk_(std::move(o.unk_token)),
        prefix_(std::move(o.continuing_subword_prefix)),
        suffix_(std::move(o.end_of_word_suffix)),
        fuse_unk_(o.fuse_unk),
        byte_fallback_(o.byte_fallback),
        ignore_merges_(o.ignore_merges),
        uid_(g_next_model_id++) {
    size_t prefix_len = prefix_ ? prefix_->size() : 0;
    if (prefix_ && prefix_->empty()) prefix_.reset();  // "" decorates nothing
    if (suffix_ && suffix_->empty()) suffix_.reset();
    merges_.reserve(merges.size());
    std::string merged;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      const uint32_t* a_id = vocab_.find(a);
      const uint32_t* b_id = vocab_.find(b);
      if (!a_id || !b_id)
        fail(ErrorKind::CorruptFile, where + ".merges[" + std::to_string(rank) + "]: token '" +
                                         std::string(a_id ? b : a) + "' is not in the vocabulary");
      merged.assign(a);
      if (b.size() >= prefix_len) merged.append(b.substr(prefix_len));
      const uint32_t* new_id = vocab_.find(merged);
      if (!new_id)
        fail(ErrorKind::CorruptFile, where + ".merges[" + std::to_string(rank) + "]: merged token '" + merged +
                                         "' is not in the vocabulary");
      merges_.set(key(*a_id, *b_id), MergeValue{uint32_t(rank), *new_id});
    }
    if (byte_fallback_) {
      for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        const uint32_t* id = vocab_.find(name);
        byte_ids_[b] = id ? int64_t(*id) : -1;
      }
    }
  }

  void tokenize(std::string_view seq, std::vector<Token>& out) const override {
    if (seq.empty()) return;
    if (ignore_merges_) {
      if (auto* id = vocab_.find(seq)) {
        out.push_back(Token{*id, std::string(seq), {0, seq.size()}});
        return;
      }
    }
    thread_local std::unordered_map<uint64_t, std::unordered_map<std::string, std::vector<Piece>, StringHash,
                                                                 std::equal_to<>>>
        caches;
    auto& cache = caches[uid_];
    if (auto it = cache.find(seq); it != cache.end()) {
      emit(it->second, out);
      return;
    }
    std::vector<Piece> pieces = merge_word(seq);
    emit(pieces, out);
    if (seq.size() < kCacheMaxWordBytes && cache.size() < kCacheCapacity) cache.emplace(std::string(seq), std::move(pieces));
  }

  std::optional<uint32_t> token_to_id(std::string_view t) const override {
    auto* id = vocab_.find(t);
    return id ? std::optional<uint32_t>(*id) : std::nullopt;
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  std::optional<std::string> end_of_word_suffix() const override { return suffix_; }
  std::optional<std::string> continuing_subword_prefix() const override { return prefix_; }

 private:
  static uint64_t key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }

  void emit(const std::vector<Piece>& pieces, std::vector<Token>& out) const {
    size_t pos = 0;
    for (const auto& [id, len] : pieces) {
      auto tok = vocab_.token(id);
      out.push_back(Token{id, tok ? std::string(*tok) : std::string(), {pos, pos + len}});
      pos += len;
    }
  }

  uint32_t unk_id() const {
    const uint32_t* id = vocab_.find(*unk_);
    if (!id) fail(ErrorKind::CorruptFile, "BPE: the unk token '" + *unk_ + "' is not in the vocabulary");
    return *id;
  }

  std::vector<Piece> merge_word(std::string_view w) const {
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&](uint32_t id, uint32_t len) {
      int32_t n = int32_t(symbols.size());
      symbols.push_back(Symbol{id, n - 1, -1, len});
      if (n > 0) symbols[n - 1].next = n;
    };
    bool has_unk = false;  // a pending unk symbol: (unk_id, unk_len)
    uint32_t pending_unk_id = 0, unk_len = 0;
    std::string buf;
    for (size_t i = 0; i < w.size();) {
      size_t len = unicode::utf8_len(static_cast<unsigned char>(w[i]));
      bool is_first = i == 0, is_last = i + len >= w.size();
      std::string_view piece = w.substr(i, len);
      const uint32_t* id;
      bool decorated = (!is_first && prefix_) || (is_last && suffix_);
      if (decorated) {
        buf.clear();
        if (!is_first && prefix_) buf += *prefix_;
        buf += piece;
        if (is_last && suffix_) buf += *suffix_;
        id = vocab_.find(buf);
      } else {
        id = vocab_.find(piece);
      }
      i += len;
      if (id) {
        if (has_unk) {
          add(pending_unk_id, unk_len);
          has_unk = false;
        }
        add(*id, uint32_t(len));
        continue;
      }
      if (byte_fallback_) {
        std::string_view s = decorated ? std::string_view(buf) : piece;
        bool all = true;
        for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
        if (all) {
          for (unsigned char b : s) add(uint32_t(byte_ids_[b]), 1);
          continue;
        }
      }
      if (unk_) {
        if (has_unk && fuse_unk_) {
          unk_len += uint32_t(len);
        } else {
          if (has_unk) add(pending_unk_id, unk_len);
          pending_unk_id = unk_id();
          unk_len = uint32_t(len);
          has_unk = true;
        }
      }
    }
    if (has_unk) add(pending_unk_id, unk_len);
    merge_all(symbols);
    std::vector<Piece> pieces;
    pieces.reserve(symbols.size());
    for (const auto& s : symbols)
      if (s.len != 0) pieces.emplace_back(s.id, s.len);
    return pieces;
  }

  void merge_all(std::vector<Symbol>& symbols) const {
    if (symbols.size() < 2) return;
    std::vector<Merge> heap_storage;
    heap_storage.reserve(symbols.size());
    std::priority_queue<Merge> queue(std::less<Merge>(), std::move(heap_storage));
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      if (const MergeValue* m = merges_.find(key(symbols[i].id, symbols[i + 1].id)))
        queue.push(Merge{uint32_t(i), m->rank, m->new_id});
    }
    while (!queue.empty()) {
      Merge top = queue.top();
      queue.pop();
      Symbol& cur = symbols[top.pos];
      if (cur.len == 0 || cur.next == -1) continue;
      size_t next_pos = size_t(cur.next);
      Symbol right = symbols[next_pos];
      const MergeValue* m = merges_.find(key(cur.id, right.id));
      if (!m || m->new_id != top.new_id) continue;
      // Merge right into cur.
      cur.id = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      symbols[next_pos].len = 0;
      if (right.next > -1 && size_t(right.next) < symbols.size()) symbols[size_t(right.next)].prev = int32_t(top.pos);
      const Symbol& current = symbols[top.pos];
      if (current.prev >= 0) {
        const Symbol& prev = symbols[size_t(current.prev)];
        if (const MergeValue* pm = merges_.find(key(prev.id, current.id)))
          queue.push(Merge{uint32_t(current.prev), pm->rank, pm->new_id});
      }
      if (current.next >= 0 && size_t(current.next) < symbols.size()) {
        const Symbol& nxt = symbols[size_t(current.next)];
        if (const MergeValue* nm = merges_.find(key(current.id, nxt.id)))
          queue.push(Merge{top.pos, nm->rank, nm->new_id});
      }
    }
  }

  VocabTable vocab_;
  U64Map<MergeValue> merges_;
  std::optional<std::string> unk_;
  std::optional<std::string> prefix_;
  std::optional<std::string> suffix_;
  bool fuse_unk_;
  bool byte_fallback_;
  bool ignore_merges_;
  int64_t byte_ids_[256] = {};
  uint64_t uid_;
};

}  // namespace

std::unique_ptr<Model> make_bpe(VocabTable vocab, const std::vector<std::pair<std::string_view, std::string_view>>& merges,
                                BpeOptions options, const std::string& where) {
  return std::make_unique<Bpe>(std::move(vocab), merges, std::move(options), where);
}

std::unique_ptr<Model> make_bpe_from_json(const JsonValue& v, const std::string& where) {
  BpeOptions o;
  VocabTable vocab = parse_vocab_object(json::required(v, "vocab", where), where + ".vocab");
  std::string mw = where + ".merges";
  auto arr = json::as_array(json::required(v, "merges", where), mw);
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  merges.reserve(arr.size());
  size_t i = 0;
  for (auto m : arr) {
    std::string_view s;
    if (m.get(s) == simdjson::SUCCESS) {
      size_t sp = s.find(' ');
      if (sp == std::string_view::npos || s.find(' ', sp + 1) != std::string_view::npos)
        json::corrupt(mw + "[" + std::to_string(i) + "]",
                      "a merge must be two tokens separated by one space, got '" + std::string(s) + "'");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      std::string here = mw + "[" + std::to_string(i) + "]";
      auto pair = json::as_array(m, here);
      if (pair.size() != 2) json::corrupt(here, "a merge must be a pair of tokens");
      auto it = pair.begin();
      std::string_view a = json::as_string(*it, here);
      ++it;
      std::string_view b = json::as_string(*it, here);
      merges.emplace_back(a, b);
    }
    ++i;
  }
  o.unk_token = json::get_opt_string(v, "unk_token", where);
  o.continuing_subword_prefix = json::get_opt_string(v, "continuing_subword_prefix", where);
  o.end_of_word_suffix = json::get_opt_string(v, "end_of_word_suffix", where);
  o.fuse_unk = json::get_bool(v, "fuse_unk", false, where);
  o.byte_fallback = json::get_bool(v, "byte_fallback", false, where);
  o.ignore_merges = json::get_bool(v, "ignore_merges", false, where);
  return make_bpe(std::move(vocab), merges, std::move(o), where);
}

}  // namespace hfpipe::text
