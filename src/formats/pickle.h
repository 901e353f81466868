// A restricted unpickler: it interprets pickle opcodes into a small value model (None,
// bool, int, float, str, bytes, tuple, list, dict, references to globals) and NEVER imports
// or calls anything. The three points where Python's unpickler would run code — naming a
// global, calling it (REDUCE) and resolving a persistent id — are delegated to a Resolver,
// which decides what each may mean (see pytorch_bin.cpp) and refuses everything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace hfpipe::formats::pickle {

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Opaque };

const char* kind_name(Kind kind);

struct Object {
  Kind kind = Kind::None;
  int64_t integer = 0;          // Bool (0 / 1), Int, Opaque (a handle chosen by the Resolver)
  double real = 0;              // Float
  std::string text;             // Str, Bytes, Global ("module.name"), Opaque (its type, for messages)
  std::vector<Object*> items;   // Tuple, List; Dict as key0, value0, key1, value1, ...
};

// Owns every Object of one unpickling. Objects point at each other with plain pointers, so a
// pickle that builds cycles or very deep nesting cannot cause recursive destruction.
class Arena {
 public:
  explicit Arena(size_t max_objects = kDefaultMaxObjects) : max_objects_(max_objects) {}
  // Throws Error(CorruptFile) once the pickle has built more than max_objects objects.
  Object* make(Kind kind);
  size_t size() const { return objects_.size(); }

  // About 20 objects per tensor in a torch state dict, so this allows ~400k tensors while
  // bounding what a hostile pickle can make us allocate (~80 bytes each).
  static constexpr size_t kDefaultMaxObjects = 8u << 20;

 private:
  size_t max_objects_;
  std::deque<Object> objects_;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // GLOBAL / STACK_GLOBAL "module name": return to allow it (a Global object is pushed),
  // throw to refuse.
  virtual void check_global(const std::string& module, const std::string& name) = 0;
  // REDUCE: `callable` is an allowed Global, `args` a Tuple. Returns the result object.
  virtual Object* call(Arena& arena, const Object& callable, const Object& args) = 0;
  // BINPERSID with the popped persistent id.
  virtual Object* persistent_load(Arena& arena, const Object& pid) = 0;
};

// Interprets the pickle in `data` and returns the object STOP finds on top of the stack.
// `source` names the pickle in error messages. Malformed or unsupported input throws
// Error(CorruptFile); whatever the Resolver throws passes through.
Object* unpickle(std::string_view data, Arena& arena, Resolver& resolver, const std::string& source);

}  // namespace hfpipe::formats::pickle
