#include "formats/pickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace hfpipe::formats::pickle {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Opaque: return "object";
  }
  return "?";
}

Object* Arena::make(Kind kind) {
  if (objects_.size() >= max_objects_)
    fail(ErrorKind::CorruptFile, "pickle builds more than " + std::to_string(max_objects_) + " objects");
  Object& object = objects_.emplace_back();
  object.kind = kind;
  return &object;
}

namespace {

// Opcodes of pickle protocols 2 to 5 that torch.save can produce (plus a few harmless
// neighbours). Anything else, notably INST / OBJ / NEWOBJ / EXT*, is refused.
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BININT = 'J', BININT1 = 'K', BININT2 = 'M',
  NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U', BINUNICODE = 'X',
  APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', BINGET = 'h',
  LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't',
  EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G', BINBYTES = 'B', SHORT_BINBYTES = 'C',
  PROTO = 0x80, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a,
  LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94, FRAME = 0x95,
};

// Caps on what the opcode stream can grow besides objects (which the Arena caps). Real torch
// pickles nest marks 3 deep; each bound keeps a hostile stream's memory linear and small.
constexpr size_t kMaxStack = 8u << 20;
constexpr size_t kMaxMarks = 1u << 16;
constexpr size_t kMaxMemo = 8u << 20;

class Machine {
 public:
  Machine(std::string_view data, Arena& arena, Resolver& resolver, const std::string& source)
      : data_(data), arena_(arena), resolver_(resolver), source_(source) {}

  Object* run() {
    for (;;) {
      op_start_ = pos_;
      const uint8_t op = read_u8();
      if (op == STOP) {
        if (stack_.empty()) corrupt("STOP with an empty stack");
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  [[noreturn]] void corrupt(const std::string& what) const {
    fail(ErrorKind::CorruptFile, "corrupt pickle " + source_ + ": " + what + " (at byte " + std::to_string(op_start_) + ")");
  }

  // ---- reading the opcode stream ----
  const uint8_t* take(uint64_t n) {
    if (n > data_.size() - pos_) corrupt("truncated pickle");
    const uint8_t* p = reinterpret_cast<const uint8_t*>(data_.data()) + pos_;
    pos_ += n;
    return p;
  }
  uint8_t read_u8() { return *take(1); }
  uint64_t read_le(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  std::string read_line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) corrupt("truncated GLOBAL");
    std::string line(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }

  // ---- the stack; MARK splits it into frames that pops may not cross ----
  void push(Object* object) {
    if (stack_.size() >= kMaxStack) corrupt("stack grows beyond " + std::to_string(kMaxStack) + " entries");
    stack_.push_back(object);
  }
  size_t frame_base() const { return marks_.empty() ? 0 : marks_.back(); }
  Object* pop() {
    if (stack_.size() <= frame_base()) corrupt("stack underflow");
    Object* top = stack_.back();
    stack_.pop_back();
    return top;
  }
  Object* top() {
    if (stack_.size() <= frame_base()) corrupt("stack underflow");
    return stack_.back();
  }
  std::vector<Object*> pop_mark() {
    if (marks_.empty()) corrupt("no MARK to pop to");
    const size_t base = marks_.back();
    marks_.pop_back();
    std::vector<Object*> items(stack_.begin() + static_cast<ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return items;
  }

  // ---- values ----
  Object* make(Kind kind) { return arena_.make(kind); }
  Object* make_int(int64_t value) {
    // Small ints are immutable and frequent (shapes, strides), so they are shared.
    if (value >= 0 && value < 256) {
      Object*& cached = small_ints_[value];
      if (!cached) {
        cached = make(Kind::Int);
        cached->integer = value;
      }
      return cached;
    }
    Object* o = make(Kind::Int);
    o->integer = value;
    return o;
  }
  Object* make_text(Kind kind, uint64_t length) {
    const uint8_t* p = take(length);
    Object* o = make(kind);
    o->text.assign(reinterpret_cast<const char*>(p), length);
    return o;
  }
  Object* make_sequence(Kind kind, std::vector<Object*> items) {
    Object* o = make(kind);
    o->items = std::move(items);
    return o;
  }
  // LONG1 / LONG4: little-endian two's complement of `n` bytes; hfpipe needs nothing wider
  // than int64 (sizes, offsets), so wider values are refused rather than approximated.
  Object* read_long(uint64_t n) {
    if (n > 8) corrupt("integer wider than 64 bits");
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return make_int(static_cast<int64_t>(v));
  }
  Object* read_binfloat() {
    const uint8_t* p = take(8);
    uint64_t bits = 0;
    for (size_t i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian, unlike the rest
    Object* o = make(Kind::Float);
    std::memcpy(&o->real, &bits, sizeof bits);
    return o;
  }

  void memo_put(uint64_t index) {
    if (memo_.size() >= kMaxMemo && !memo_.count(index)) corrupt("memo grows beyond its limit");
    memo_[index] = top();
  }
  Object* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) corrupt("memo key " + std::to_string(index) + " was never stored");
    return it->second;
  }

  void global(const std::string& module, const std::string& name) {
    resolver_.check_global(module, name);
    Object* o = make(Kind::Global);
    o->text = module + "." + name;
    push(o);
  }

  Object* expect(Object* o, Kind kind, const char* op) {
    if (o->kind != kind)
      corrupt(std::string(op) + " expects a " + kind_name(kind) + ", got a " + kind_name(o->kind));
    return o;
  }

  void add_pairs(Object* dict, std::vector<Object*>& items, const char* op) {
    expect(dict, Kind::Dict, op);
    if (items.size() % 2) corrupt(std::string(op) + " with an odd number of items");
    dict->items.insert(dict->items.end(), items.begin(), items.end());
  }

  void step(uint8_t op);

  std::string_view data_;
  Arena& arena_;
  Resolver& resolver_;
  const std::string& source_;
  size_t pos_ = 0, op_start_ = 0;
  std::vector<Object*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Object*> memo_;
  std::unordered_map<int64_t, Object*> small_ints_;
};

void Machine::step(uint8_t op) {
  switch (op) {
    case PROTO:
      if (read_u8() > 5) corrupt("pickle protocol newer than 5");
      return;
    case FRAME: {
      // Frames only group opcodes for buffered reading; the content is read as usual.
      if (read_le(8) > data_.size() - pos_) corrupt("FRAME longer than the pickle");
      return;
    }
    case MARK:
      if (marks_.size() >= kMaxMarks) corrupt("MARKs nested too deeply");
      marks_.push_back(stack_.size());
      return;
    case POP:
      if (stack_.size() > frame_base()) stack_.pop_back();
      else pop_mark();  // as Python does: POP on an empty frame discards the mark
      return;
    case POP_MARK: pop_mark(); return;
    case DUP: push(top()); return;
    case NONE: push(make(Kind::None)); return;
    case NEWTRUE:
    case NEWFALSE: {
      Object* b = make(Kind::Bool);
      b->integer = op == NEWTRUE;
      push(b);
      return;
    }
    case BININT: push(make_int(static_cast<int32_t>(read_le(4)))); return;
    case BININT1: push(make_int(read_le(1))); return;
    case BININT2: push(make_int(static_cast<int64_t>(read_le(2)))); return;
    case LONG1: push(read_long(read_le(1))); return;
    case LONG4: {
      const int32_t n = static_cast<int32_t>(read_le(4));
      if (n < 0) corrupt("negative LONG4 length");
      push(read_long(static_cast<uint64_t>(n)));
      return;
    }
    case BINFLOAT: push(read_binfloat()); return;
    case SHORT_BINUNICODE:
    case SHORT_BINSTRING: push(make_text(Kind::Str, read_le(1))); return;
    case BINUNICODE: push(make_text(Kind::Str, read_le(4))); return;
    case BINSTRING: {
      const int32_t n = static_cast<int32_t>(read_le(4));
      if (n < 0) corrupt("negative BINSTRING length");
      push(make_text(Kind::Str, static_cast<uint64_t>(n)));
      return;
    }
    case BINUNICODE8: push(make_text(Kind::Str, read_le(8))); return;
    case SHORT_BINBYTES: push(make_text(Kind::Bytes, read_le(1))); return;
    case BINBYTES: push(make_text(Kind::Bytes, read_le(4))); return;
    case BINBYTES8: push(make_text(Kind::Bytes, read_le(8))); return;
    case EMPTY_TUPLE: push(make(Kind::Tuple)); return;
    case EMPTY_LIST: push(make(Kind::List)); return;
    case EMPTY_DICT: push(make(Kind::Dict)); return;
    case TUPLE: push(make_sequence(Kind::Tuple, pop_mark())); return;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: {
      std::vector<Object*> items(op - TUPLE1 + 1);
      for (size_t i = items.size(); i-- > 0;) items[i] = pop();
      push(make_sequence(Kind::Tuple, std::move(items)));
      return;
    }
    case LIST: push(make_sequence(Kind::List, pop_mark())); return;
    case DICT: {
      std::vector<Object*> items = pop_mark();
      Object* dict = make(Kind::Dict);
      add_pairs(dict, items, "DICT");
      push(dict);
      return;
    }
    case BINPUT: memo_put(read_le(1)); return;
    case LONG_BINPUT: memo_put(read_le(4)); return;
    case MEMOIZE: memo_put(memo_.size()); return;
    case BINGET: push(memo_get(read_le(1))); return;
    case LONG_BINGET: push(memo_get(read_le(4))); return;
    case APPEND: {
      Object* value = pop();
      expect(top(), Kind::List, "APPEND")->items.push_back(value);
      return;
    }
    case APPENDS: {
      std::vector<Object*> items = pop_mark();
      Object* list = expect(top(), Kind::List, "APPENDS");
      list->items.insert(list->items.end(), items.begin(), items.end());
      return;
    }
    case SETITEM: {
      std::vector<Object*> items(2);
      items[1] = pop();
      items[0] = pop();
      add_pairs(top(), items, "SETITEM");
      return;
    }
    case SETITEMS: {
      std::vector<Object*> items = pop_mark();
      add_pairs(top(), items, "SETITEMS");
      return;
    }
    case GLOBAL: {
      std::string module = read_line();
      std::string name = read_line();
      global(module, name);
      return;
    }
    case STACK_GLOBAL: {
      Object* name = expect(pop(), Kind::Str, "STACK_GLOBAL");
      Object* module = expect(pop(), Kind::Str, "STACK_GLOBAL");
      global(module->text, name->text);
      return;
    }
    case REDUCE: {
      Object* args = expect(pop(), Kind::Tuple, "REDUCE");
      Object* callable = expect(pop(), Kind::Global, "REDUCE");
      push(resolver_.call(arena_, *callable, *args));
      return;
    }
    case BUILD: {
      // BUILD sets an object's state. torch's OrderedDict state dicts carry `_metadata`
      // (module versions) this way; it is irrelevant to the tensors, so it is dropped.
      pop();
      expect(top(), Kind::Dict, "BUILD");
      return;
    }
    case BINPERSID: push(resolver_.persistent_load(arena_, *pop())); return;
    default: {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", op);
      corrupt(std::string("unsupported pickle opcode ") + hex + " (torch.save does not write it)");
    }
  }
}

}  // namespace

Object* unpickle(std::string_view data, Arena& arena, Resolver& resolver, const std::string& source) {
  return Machine(data, arena, resolver, source).run();
}

}  // namespace hfpipe::formats::pickle
