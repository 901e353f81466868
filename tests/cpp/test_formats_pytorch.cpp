// Tests of the PyTorch .bin reader: the zip layer, the restricted unpickler (including
// hostile pickles) and tensor reconstruction. Archives and pickles are built byte by byte.
#include <gtest/gtest.h>

#include <cstring>

#include "formats/pickle.h"
#include "formats/pytorch_bin.h"
#include "formats/weights.h"
#include "formats/zip_reader.h"
#include "test_formats_helpers.h"

namespace hfpipe::formats {
namespace {

using testing::bytes_of;
using testing::expect_error;
using testing::PickleWriter;
using testing::raw_bytes;
using testing::TempDir;
using testing::torch_archive;
using testing::view_of;
using testing::write_file;
using testing::zip_archive;

const std::vector<float> kSix = {0, 1, 2, 3, 4, 5};

// {'w': [[0,1,2],[3,4,5]], 'wt': w.T (strided), 'tail': storage[4:6], 'h': f16 [1, -2]}
std::string sample_pickle() {
  PickleWriter p;
  p.ordered_dict().op('(');
  p.str("w").tensor_v2("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.str("wt").tensor_v2("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  p.str("tail").tensor_v2("FloatStorage", "0", 6, 4, {2}, {1});
  p.str("h").tensor_v2("HalfStorage", "1", 2, 0, {2}, {1});
  p.op('u');
  return p.finish();
}

std::vector<std::pair<std::string, std::string>> sample_storages() {
  return {{"0", raw_bytes(kSix)}, {"1", raw_bytes(std::vector<uint16_t>{0x3c00, 0xc000})}};
}

void expect_sample(const WeightMap& w) {
  ASSERT_EQ(w.names(), (std::vector<std::string>{"h", "tail", "w", "wt"}));
  EXPECT_EQ(w.at("w").shape(), (Shape{2, 3}));
  EXPECT_EQ(w.at("w").f32()[4], 4.0f);
  const float* wt = w.at("wt").f32();
  EXPECT_EQ(std::vector<float>(wt, wt + 6), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(w.at("tail").f32()[0], 4.0f);
  EXPECT_EQ(w.at("tail").f32()[1], 5.0f);
  EXPECT_EQ(w.at("h").dtype(), DType::F32);
  EXPECT_EQ(w.at("h").f32()[1], -2.0f);
}

TEST(FormatsPytorch, LoadsStoredArchiveZeroCopy) {
  const ByteView bytes = view_of(torch_archive(sample_pickle(), sample_storages()));
  const WeightMap w = parse_pytorch_bin(bytes);
  expect_sample(w);
  const auto* p = static_cast<const uint8_t*>(w.at("w").raw());
  EXPECT_TRUE(testing::points_into(p, bytes));
  EXPECT_EQ(static_cast<const uint8_t*>(w.at("tail").raw()), p + 16);  // shares the storage
  EXPECT_FALSE(testing::points_into(w.at("wt").raw(), bytes));  // strided: materialised
}

TEST(FormatsPytorch, LoadsDeflatedAndZip64Archives) {
  expect_sample(parse_pytorch_bin(view_of(torch_archive(sample_pickle(), sample_storages(), /*deflate=*/true))));
  expect_sample(parse_pytorch_bin(view_of(torch_archive(sample_pickle(), sample_storages(), false, /*zip64=*/true))));
  expect_sample(parse_pytorch_bin(view_of(torch_archive(sample_pickle(), sample_storages(), true, true))));
}

TEST(FormatsPytorch, LoadsFromDisk) {
  TempDir dir;
  write_file(dir / "pytorch_model.bin", torch_archive(sample_pickle(), sample_storages()));
  expect_sample(load_checkpoint(dir.path()));
}

TEST(FormatsPytorch, AcceptsWrappedStateDictAndV3AndParameter) {
  PickleWriter p;
  p.op('}').str("state_dict").op('}').op('(');
  p.str("p").global("torch._utils", "_rebuild_parameter").op('(');
  p.tensor_v2("FloatStorage", "0", 6, 0, {6}, {1}).op(0x88).ordered_dict().op('t').op('R');
  // _rebuild_tensor_v3(UntypedStorage of 24 bytes, 0, (2,), (1,), False, {}, torch.int32)
  p.str("v3").global("torch._utils", "_rebuild_tensor_v3").op('(');
  p.op('(').str("storage").global("torch.storage", "UntypedStorage").str("0").str("cpu").integer(24).op('t').op('Q');
  p.integer(0).ints({2}).ints({1}).op(0x89).op('}').global("torch", "int32").op('t').op('R');
  p.op('u').op('s');
  const WeightMap w = parse_pytorch_bin(view_of(torch_archive(p.finish(), {{"0", raw_bytes(kSix)}})));
  EXPECT_EQ(w.at("p").numel(), 6);
  EXPECT_EQ(w.at("v3").dtype(), DType::I32);
  int32_t one_as_int;
  const float one = 1.0f;
  std::memcpy(&one_as_int, &one, 4);
  EXPECT_EQ(w.at("v3").data_as<int32_t>()[1], one_as_int);  // reinterpreted bytes, as torch does
}

TEST(FormatsPytorch, UnsupportedDtypeViaV3) {
  PickleWriter p;
  p.op('}').str("u").global("torch._utils", "_rebuild_tensor_v3").op('(');
  p.op('(').str("storage").global("torch.storage", "UntypedStorage").str("0").str("cpu").integer(4).op('t').op('Q');
  p.integer(0).ints({2}).ints({1}).op(0x89).op('}').global("torch", "uint16").op('t').op('R').op('s');
  expect_error([&] { parse_pytorch_bin(view_of(torch_archive(p.finish(), {{"0", "abcd"}}))); },
               ErrorKind::UnsupportedModel, "torch.uint16");
}

// ---- hostile pickles ----

std::string malicious_reduce(const std::string& module, const std::string& name, const std::string& arg) {
  PickleWriter p;
  p.global(module, name).op('(').str(arg).op('t').op('R');
  return p.finish();
}

TEST(FormatsPytorch, RefusesOsSystemWithoutRunningIt) {
  TempDir dir;
  const std::string marker = (dir / "pwned").string();
  const std::string file = torch_archive(malicious_reduce("os", "system", "touch " + marker), {});
  expect_error([&] { parse_pytorch_bin(view_of(file, "evil.bin")); }, ErrorKind::CorruptFile,
               "refusing to load evil.bin: its pickle references os.system");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(FormatsPytorch, RefusesOtherGlobals) {
  for (const auto& global : std::vector<std::pair<std::string, std::string>>{
           {"builtins", "eval"}, {"posix", "system"}, {"torch", "load"}, {"torch._utils", "_rebuild_qtensor"},
           {"subprocess", "Popen"}, {"collections", "defaultdict"}}) {
    expect_error([&] { parse_pytorch_bin(view_of(torch_archive(malicious_reduce(global.first, global.second, "x"), {}))); },
                 ErrorKind::CorruptFile, "refusing");
  }
  // The same through STACK_GLOBAL (protocol 4).
  PickleWriter p;
  p.str("builtins").str("exec").op(0x93).op('(').str("print(1)").op('t').op('R');
  expect_error([&] { parse_pytorch_bin(view_of(torch_archive(p.finish(), {}))); }, ErrorKind::CorruptFile,
               "builtins.exec");
}

TEST(FormatsPytorch, RefusesCallingNonFunctionsAndForeignOpcodes) {
  PickleWriter call_dtype;
  call_dtype.global("torch", "float32").op(')').op('R');
  expect_error([&] { parse_pytorch_bin(view_of(torch_archive(call_dtype.finish(), {}))); }, ErrorKind::CorruptFile,
               "not a function");
  for (uint8_t op : {uint8_t{0x81}, uint8_t{'i'}, uint8_t{'o'}, uint8_t{0x82}, uint8_t{'I'}, uint8_t{'P'}}) {
    PickleWriter p;
    p.op(')').op(op);
    expect_error([&] { parse_pytorch_bin(view_of(torch_archive(p.finish(), {}))); }, ErrorKind::CorruptFile,
                 "unsupported pickle opcode");
  }
}

TEST(FormatsPytorch, RejectsTensorsOutsideTheirStorage) {
  const std::vector<std::pair<std::string, std::string>> storage = {{"0", raw_bytes(kSix)}};
  auto archive = [&](int64_t numel, int64_t offset, std::vector<int64_t> size, std::vector<int64_t> stride) {
    PickleWriter p;
    p.op('}').str("w").tensor_v2("FloatStorage", "0", numel, offset, size, stride).op('s');
    return torch_archive(p.finish(), storage);
  };
  expect_error([&] { parse_pytorch_bin(view_of(archive(6, 1, {2, 3}, {3, 1}))); }, ErrorKind::CorruptFile, "past the end");
  expect_error([&] { parse_pytorch_bin(view_of(archive(6, 0, {7}, {1}))); }, ErrorKind::CorruptFile, "past the end");
  expect_error([&] { parse_pytorch_bin(view_of(archive(6, 0, {2, 2}, {1, 5}))); }, ErrorKind::CorruptFile, "past the end");
  expect_error([&] { parse_pytorch_bin(view_of(archive(6, 0, {65536, 65536}, {65536, 1}))); }, ErrorKind::CorruptFile,
               "past the end");
  expect_error([&] { parse_pytorch_bin(view_of(archive(7, 0, {1}, {1}))); }, ErrorKind::CorruptFile, "claims 7 elements");
  expect_error([&] { parse_pytorch_bin(view_of(archive(6, 0, {2}, {1, 1}))); }, ErrorKind::CorruptFile, "differ");
  // Stride 0 can make one float look like 10^10: materialising that is refused, not attempted.
  expect_error([&] { parse_pytorch_bin(view_of(archive(6, 0, {100000, 100000}, {0, 0}))); }, ErrorKind::CorruptFile,
               "implausibly");
  // A stride of 0 (an expanded tensor) reads one element repeatedly: allowed.
  const WeightMap w = parse_pytorch_bin(view_of(archive(6, 5, {3}, {0})));
  EXPECT_EQ(std::vector<float>(w.at("w").f32(), w.at("w").f32() + 3), (std::vector<float>{5, 5, 5}));
  // Empty tensors address nothing, whatever their offset.
  EXPECT_EQ(parse_pytorch_bin(view_of(archive(6, 100, {0, 3}, {3, 1}))).at("w").numel(), 0);
}

TEST(FormatsPytorch, BudgetsCopiesOfOneStorageViewedManyTimes) {
  // 40 f16 views of one 1 MB storage at distinct offsets: each converts to its own f32
  // buffer, 80 MB in all from a 1 MB file; over the budget of 64 MB + 4x the storage.
  const int64_t n = 1 << 19;
  PickleWriter p;
  p.op('}').op('(');
  for (int i = 0; i < 40; ++i) p.str("t" + std::to_string(i)).tensor_v2("HalfStorage", "0", n, i, {n - 64}, {1});
  p.op('u');
  const std::string archive = torch_archive(p.finish(), {{"0", std::string(2 * n, '\0')}});
  expect_error([&] { parse_pytorch_bin(view_of(archive)); }, ErrorKind::CorruptFile, "implausibly");
}

TEST(FormatsPytorch, RejectsMalformedStructure) {
  PickleWriter missing;
  missing.op('}').str("w").tensor_v2("FloatStorage", "9", 1, 0, {1}, {1}).op('s');
  expect_error([&] { parse_pytorch_bin(view_of(torch_archive(missing.finish(), {}))); }, ErrorKind::CorruptFile,
               "storage '9' is missing");

  PickleWriter list;
  list.op(']');
  expect_error([&] { parse_pytorch_bin(view_of(torch_archive(list.finish(), {}))); }, ErrorKind::UnsupportedModel,
               "pickled list");

  PickleWriter not_tensor;
  not_tensor.op('}').str("w").integer(3).op('s').str("v").tensor_v2("FloatStorage", "0", 6, 0, {6}, {1}).op('s');
  expect_error([&] { parse_pytorch_bin(view_of(torch_archive(not_tensor.finish(), {{"0", raw_bytes(kSix)}}))); },
               ErrorKind::UnsupportedModel, "entry 'w'");

  PickleWriter empty;
  empty.op('}');
  EXPECT_EQ(parse_pytorch_bin(view_of(torch_archive(empty.finish(), {}))).size(), 0u);

  const std::string big_endian = zip_archive({{"a/data.pkl", empty.finish()}, {"a/byteorder", "big"}});
  expect_error([&] { parse_pytorch_bin(view_of(big_endian)); }, ErrorKind::UnsupportedModel, "big-endian");
  expect_error([&] { parse_pytorch_bin(view_of(zip_archive({{"a/other", "x"}}))); }, ErrorKind::CorruptFile,
               "no data.pkl");
}

TEST(FormatsPytorch, RejectsLegacyAndNonZipFiles) {
  expect_error([] { parse_pytorch_bin(view_of(bytes_of("\x80\x02\x8a\x0al\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"))); },
               ErrorKind::UnsupportedModel, "legacy");
  expect_error([] { parse_pytorch_bin(view_of("hello, I am not a zip archive")); }, ErrorKind::CorruptFile,
               "end-of-central-directory");
  expect_error([] { parse_pytorch_bin(view_of("")); }, ErrorKind::CorruptFile, "end-of-central-directory");
}

// ---- the unpickler alone ----

class RefuseAll : public pickle::Resolver {
 public:
  void check_global(const std::string&, const std::string&) override { throw Error(ErrorKind::CorruptFile, "refused"); }
  pickle::Object* call(pickle::Arena&, const pickle::Object&, const pickle::Object&) override { return nullptr; }
  pickle::Object* persistent_load(pickle::Arena&, const pickle::Object&) override {
    throw Error(ErrorKind::CorruptFile, "refused");
  }
};

pickle::Object* run(const std::string& bytes, pickle::Arena& arena) {
  RefuseAll resolver;
  return pickle::unpickle(bytes, arena, resolver, "test.pkl");
}

TEST(FormatsPickle, DecodesScalars) {
  pickle::Arena arena;
  // (LONG1 -1, LONG1 128, BININT -5, BINFLOAT 1.5, BININT2 513, None, True, b"ab", "é")
  const std::string bytes = bytes_of("\x80\x02(\x8a\x01\xff\x8a\x02\x80\x00J\xfb\xff\xff\xff") +
                            bytes_of("G\x3f\xf8\0\0\0\0\0\0M\x01\x02N\x88" "C\x02" "ab\x8c\x02\xc3\xa9t.");
  const pickle::Object* t = run(bytes, arena);
  ASSERT_EQ(t->kind, pickle::Kind::Tuple);
  ASSERT_EQ(t->items.size(), 9u);
  EXPECT_EQ(t->items[0]->integer, -1);
  EXPECT_EQ(t->items[1]->integer, 128);
  EXPECT_EQ(t->items[2]->integer, -5);
  EXPECT_EQ(t->items[3]->real, 1.5);
  EXPECT_EQ(t->items[4]->integer, 513);
  EXPECT_EQ(t->items[5]->kind, pickle::Kind::None);
  EXPECT_EQ(t->items[6]->integer, 1);
  EXPECT_EQ(t->items[7]->text, "ab");
  EXPECT_EQ(t->items[8]->text, "\xc3\xa9");
}

TEST(FormatsPickle, MemoAndFraming) {
  pickle::Arena arena;
  // PROTO 4, FRAME, EMPTY_LIST MEMOIZE, BINGET 0, APPEND (the list now contains itself), STOP.
  const std::string bytes = bytes_of("\x80\x04\x95\x05\0\0\0\0\0\0\0]\x94h\x00" "a.");
  const pickle::Object* list = run(bytes, arena);
  ASSERT_EQ(list->kind, pickle::Kind::List);
  EXPECT_EQ(list->items.at(0), list);  // cycles are fine: nothing recurses over them
}

TEST(FormatsPickle, MalformedStreams) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {bytes_of("\x80\x02"), "truncated"},
      {bytes_of("\x80\x02X\xff\xff\xff\x7f" "ab"), "truncated"},
      {bytes_of("\x80\x02t."), "no MARK"},
      {bytes_of("\x80\x02(s."), "underflow"},
      {bytes_of("\x80\x02h\x07."), "never stored"},
      {bytes_of("\x80\x02\x8a\x09\1\1\1\1\1\1\1\1\1."), "wider than 64 bits"},
      {bytes_of("\x80\x02K\x01K\x01K\x02s."), "expects a dict"},
      {bytes_of("\x80\x02}K\x01s."), "underflow"},
      {bytes_of("\x80\x09."), "newer than 5"},
      {bytes_of("\x80\x02."), "empty stack"},
      {bytes_of("\x80\x02\x95\xff\xff\0\0\0\0\0\0N."), "FRAME"},
      {bytes_of("\x80\x02" "cos\nsystem"), "truncated GLOBAL"},
      {bytes_of("\x80\x02" "cos\nsystem\n"), "refused"},
  };
  for (const auto& c : cases) {
    pickle::Arena arena;
    expect_error([&] { run(c.first, arena); }, ErrorKind::CorruptFile, c.second);
  }
}

TEST(FormatsPickle, DeepNestingAndObjectCap) {
  // 200k nested lists: built without recursion, and freed without recursion.
  const size_t depth = 200000;
  std::string bytes = "\x80\x02" + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
  {
    pickle::Arena arena;
    EXPECT_EQ(run(bytes, arena)->kind, pickle::Kind::List);
  }
  pickle::Arena small(1000);
  expect_error([&] { run(bytes, small); }, ErrorKind::CorruptFile, "more than 1000 objects");
  std::string marks = "\x80\x02" + std::string(100000, '(') + ".";
  pickle::Arena arena;
  expect_error([&] { run(marks, arena); }, ErrorKind::CorruptFile, "MARKs nested too deeply");
}

// ---- zip layer ----

TEST(FormatsZip, ReadsMembersAndValidatesOffsets) {
  const std::string good = zip_archive({{"a", "hello"}, {"b", std::string(1000, 'z'), true}});
  ZipArchive zip(view_of(good));
  ASSERT_EQ(zip.entries().size(), 2u);
  EXPECT_EQ(zip.read(*zip.find("a")).chars(), "hello");
  EXPECT_EQ(zip.read(*zip.find("b")).chars(), std::string(1000, 'z'));
  EXPECT_EQ(zip.find("c"), nullptr);

  // Every truncation fails cleanly.
  for (size_t n = 0; n < good.size(); ++n) {
    try {
      ZipArchive z(view_of(good.substr(0, n)));
      for (const ZipEntry& e : z.entries()) z.read(e);
    } catch (const Error& e) {
      EXPECT_TRUE(e.kind() == ErrorKind::CorruptFile) << e.what();
    }
  }
}

TEST(FormatsZip, RejectsCorruptDirectoriesAndData) {
  std::string zip = zip_archive({{"a", std::string(100, 'q'), true}});
  const size_t eocd = zip.size() - 22;
  auto patched = [&](size_t at, uint64_t value, int bytes) {
    std::string z = zip;
    for (int i = 0; i < bytes; ++i) z[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    return z;
  };
  expect_error([&] { ZipArchive z(view_of(patched(eocd + 16, 0x7fffffff, 4))); }, ErrorKind::CorruptFile, "outside");
  expect_error([&] { ZipArchive z(view_of(patched(eocd + 10, 500, 2))); }, ErrorKind::CorruptFile, "too small");
  const size_t cd = zip.size() - 22 - (46 + 1);
  expect_error([&] { ZipArchive z(view_of(patched(cd + 42, 0x10000, 4))); }, ErrorKind::CorruptFile, "local header");
  expect_error([&] { ZipArchive z(view_of(patched(cd + 20, 0x10000, 4))); }, ErrorKind::CorruptFile, "runs past");
  expect_error([&] { ZipArchive z(view_of(patched(cd + 8, 1, 2))); }, ErrorKind::UnsupportedModel, "encrypted");
  expect_error([&] { ZipArchive z(view_of(patched(cd + 10, 12, 2))); }, ErrorKind::UnsupportedModel, "method 12");
  {
    ZipArchive z(view_of(patched(cd + 16, 0xdeadbeef, 4)));
    expect_error([&] { z.read(z.entries()[0]); }, ErrorKind::CorruptFile, "CRC");
  }
  {
    ZipArchive z(view_of(patched(cd + 24, 0x7fffffff, 4)));  // a zip bomb's claim
    expect_error([&] { z.read(z.entries()[0]); }, ErrorKind::CorruptFile, "impossible expansion");
  }
  {
    ZipArchive z(view_of(patched(cd + 24, 101, 4)));
    expect_error([&] { z.read(z.entries()[0]); }, ErrorKind::CorruptFile, "does not inflate");
  }
  expect_error([&] { ZipArchive z(view_of(zip_archive({{"a", "1"}, {"a", "2"}}))); }, ErrorKind::CorruptFile, "twice");
}

// An "overlapping" zip bomb: many directory entries name the same deflate stream, so each
// passes the per-member expansion bound while together they inflate to far more.
TEST(FormatsZip, RejectsMembersThatShareBytes) {
  const std::string one = zip_archive({{"a", std::string(1 << 20, '\0'), true}});
  const size_t cd = one.size() - 22 - (46 + 1);  // the single central entry, named "a"
  std::string bomb = one.substr(0, cd);
  for (char name = 'a'; name <= 'z'; ++name) {
    std::string entry = one.substr(cd, 46 + 1);
    entry.back() = name;
    bomb += entry;
  }
  std::string eocd = one.substr(one.size() - 22);
  for (size_t at : {size_t(8), size_t(10)}) eocd[at] = 26, eocd[at + 1] = 0;  // entries on this disk, in all
  const uint32_t cd_size = 26 * (46 + 1);
  for (int i = 0; i < 4; ++i) eocd[12 + i] = static_cast<char>((cd_size >> (8 * i)) & 0xff);
  bomb += eocd;
  expect_error([&] { ZipArchive z(view_of(bomb)); }, ErrorKind::CorruptFile, "overlap");
}

}  // namespace
}  // namespace hfpipe::formats
