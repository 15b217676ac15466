#include "cairn/infer/gguf.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/temp_dir.h"
#include "cairn/infer/gguf_writer.h"

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

// A hand encoder for crafting files, malformed ones included: it writes exactly what it
// is told, with none of GgufWriter's checks.
class Raw {
 public:
  template <typename T>
  Raw& Put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s_.append(b, sizeof(T));
    return *this;
  }
  Raw& Str(std::string_view v) {
    Put<uint64_t>(v.size());
    s_.append(v);
    return *this;
  }
  Raw& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    s_.append("GGUF");
    return Put(version).Put(n_tensors).Put(n_kv);
  }
  Raw& KvU32(std::string_view key, uint32_t v) { return Str(key).Put<uint32_t>(4).Put(v); }
  // A tensor info: name, dims, type, offset.
  Raw& Tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    Str(name).Put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) Put(d);
    return Put(type).Put(offset);
  }
  Raw& PadTo(size_t alignment) {
    while (s_.size() % alignment) s_.push_back('\0');
    return *this;
  }
  Raw& Bytes(size_t n, char c = '\0') {
    s_.append(n, c);
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

std::string ErrorOf(const std::string& bytes) {
  auto f = GgufFile::FromBuffer(bytes, "t.gguf");
  if (f.ok()) return "OK";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  return std::string(f.status().message());
}

// A small valid file with every metadata type and two tensors.
std::string SmallFile() {
  GgufWriter w;
  w.SetU8("t.u8", 200);
  w.SetI8("t.i8", -5);
  w.SetU16("t.u16", 60000);
  w.SetI16("t.i16", -30000);
  w.SetU32("t.u32", 4000000000u);
  w.SetI32("t.i32", -7);
  w.SetU64("t.u64", 1ull << 40);
  w.SetI64("t.i64", -(1ll << 40));
  w.SetF32("t.f32", 0.25f);
  w.SetF64("t.f64", 1e-300);
  w.SetBool("t.bool", true);
  w.SetString("t.str", "héllo\n");
  w.SetStringArray("t.strs", {"a", "", "ccc"});
  w.SetF32Array("t.f32s", {1.5f, -2.0f});
  w.SetI32Array("t.i32s", {1, -2, 3});
  w.AddTensor("a", TensorType::kF32, {3, 2});
  w.AddTensor("b", TensorType::kQ8_0, {64});
  std::string out;
  EXPECT_TRUE(w.Begin(&out).ok());
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  EXPECT_TRUE(w.Append(a.data(), a.size() * 4).ok());
  std::string b(68, '\x01');
  EXPECT_TRUE(w.Append(b.data(), b.size()).ok());
  EXPECT_TRUE(w.Finish().ok());
  return out;
}

TEST(GgufTest, ReadsEveryMetadataType) {
  auto f = GgufFile::FromBuffer(SmallFile());
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.data_offset() % 32, 0u);
  ASSERT_EQ(g.metadata().size(), 15u);
  EXPECT_EQ(g.metadata()[0].key, "t.u8");
  EXPECT_EQ(*g.GetU32("t.u8"), 200u);
  EXPECT_EQ(*g.GetI32("t.i8"), -5);
  EXPECT_EQ(*g.GetU32("t.u16"), 60000u);
  EXPECT_EQ(*g.GetI64("t.i16"), -30000);
  EXPECT_EQ(*g.GetU32("t.u32"), 4000000000u);
  EXPECT_EQ(*g.GetI32("t.i32"), -7);
  EXPECT_EQ(*g.GetU64("t.u64"), 1ull << 40);
  EXPECT_EQ(*g.GetI64("t.i64"), -(1ll << 40));
  EXPECT_EQ(*g.GetF32("t.f32"), 0.25f);
  EXPECT_EQ(std::get<double>(g.Find("t.f64")->storage()), 1e-300);
  EXPECT_EQ(*g.GetF32("t.u32"), 4e9f);  // integers convert to float
  EXPECT_TRUE(*g.GetBool("t.bool"));
  EXPECT_EQ(*g.GetString("t.str"), "héllo\n");
  EXPECT_THAT(*g.GetStringArray("t.strs"), ::testing::ElementsAre("a", "", "ccc"));
  EXPECT_THAT(*g.GetF32Array("t.f32s"), ::testing::ElementsAre(1.5f, -2.0f));
  EXPECT_THAT(*g.GetI32Array("t.i32s"), ::testing::ElementsAre(1, -2, 3));
  EXPECT_EQ(*g.GetArraySize("t.strs"), 3u);
  EXPECT_EQ(g.Find("t.u8")->type(), GgufType::kU8);
  EXPECT_EQ(g.Find("t.f64")->type(), GgufType::kF64);
  EXPECT_EQ(g.Find("t.str")->ToString(), "\"héllo\\n\"");
  EXPECT_EQ(g.Find("t.strs")->ToString(), "[string x 3]");
  EXPECT_EQ(g.Find("t.i8")->ToString(), "-5");
  EXPECT_EQ(g.Find("missing"), nullptr);
}

TEST(GgufTest, GettersNameTheKeyOnError) {
  auto f = GgufFile::FromBuffer(SmallFile());
  ASSERT_TRUE(f.ok());
  const GgufFile& g = **f;
  auto missing = g.GetU32("llama.block_count");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("'llama.block_count'"));
  auto negative = g.GetU32("t.i32");
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(negative.status().message()), HasSubstr("'t.i32' value -7 does not fit u32"));
  EXPECT_FALSE(g.GetI32("t.u32").ok());  // 4e9 does not fit
  auto wrong = g.GetString("t.u8");
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("'t.u8' has type u8, expected string"));
  EXPECT_FALSE(g.GetBool("t.u8").ok());
  EXPECT_FALSE(g.GetF32("t.str").ok());
  EXPECT_FALSE(g.GetStringArray("t.f32s").ok());
  EXPECT_FALSE(g.GetF32Array("t.strs").ok());
  EXPECT_FALSE(g.GetI32Array("t.f32s").ok());
  EXPECT_FALSE(g.GetArraySize("t.u8").ok());
}

TEST(GgufTest, TensorsPointIntoTheData) {
  auto f = GgufFile::FromBuffer(SmallFile());
  ASSERT_TRUE(f.ok());
  const GgufFile& g = **f;
  ASSERT_EQ(g.tensors().size(), 2u);
  const GgufTensor* a = g.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, TensorType::kF32);
  EXPECT_EQ(a->n_dims, 2u);
  EXPECT_EQ(a->ne[0], 3);
  EXPECT_EQ(a->ne[1], 2);
  EXPECT_EQ(a->ne[2], 1);
  EXPECT_EQ(a->size, 24u);
  EXPECT_EQ(a->ShapeString(), "[3, 2]");
  float v[6];
  std::memcpy(v, a->data, 24);
  EXPECT_EQ(v[5], 6.0f);
  const GgufTensor* b = g.FindTensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->offset, 32u);  // 24 bytes padded to the alignment
  EXPECT_EQ(b->size, 68u);
  EXPECT_EQ(b->data[67], 1);
  EXPECT_EQ(g.FindTensor("c"), nullptr);
}

TEST(GgufTest, NestedArraysAndCopiedValues) {
  Raw r;
  r.Header(3, 0, 1).Str("nested").Put<uint32_t>(9);
  // [[1, 2], ["x"]]: an array of 2 arrays.
  r.Put<uint32_t>(9).Put<uint64_t>(2);
  r.Put<uint32_t>(5).Put<uint64_t>(2).Put<int32_t>(1).Put<int32_t>(2);
  r.Put<uint32_t>(8).Put<uint64_t>(1).Str("x");
  auto f = GgufFile::FromBuffer(r.str());
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufValue* v = (*f)->Find("nested");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->array().type, GgufType::kArray);
  ASSERT_EQ(v->array().arrays.size(), 2u);
  EXPECT_EQ(v->array().arrays[0].array().At<int32_t>(1), 2);
  EXPECT_EQ(v->array().arrays[1].array().Strings()[0], "x");
  // The writer copies it back byte for byte.
  GgufWriter w;
  w.SetValue("nested", *v);
  std::string out;
  ASSERT_TRUE(w.Begin(&out).ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(out.substr(0, r.str().size()), r.str());
}

TEST(GgufTest, NonDefaultAlignment) {
  GgufWriter w(64);
  w.AddTensor("x", TensorType::kF16, {3});
  w.AddTensor("y", TensorType::kF16, {5});
  std::string out;
  ASSERT_TRUE(w.Begin(&out).ok());
  ASSERT_TRUE(w.Append(std::string(16, 'z').data(), 16).ok());
  ASSERT_TRUE(w.Finish().ok());
  auto f = GgufFile::FromBuffer(out);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
  EXPECT_EQ((*f)->FindTensor("y")->offset, 64u);
}

TEST(GgufTest, WriterRejectsMisuse) {
  {
    GgufWriter w;
    w.SetU32("k", 1);
    w.SetU32("k", 2);
    std::string out;
    EXPECT_THAT(std::string(w.Begin(&out).message()), HasSubstr("'k' set twice"));
  }
  {
    GgufWriter w;
    w.AddTensor("q", TensorType::kQ4_K, {100});
    std::string out;
    EXPECT_FALSE(w.Begin(&out).ok());
  }
  {
    GgufWriter w;
    w.AddTensor("x", TensorType::kF32, {2});
    std::string out;
    ASSERT_TRUE(w.Begin(&out).ok());
    ASSERT_TRUE(w.Append("abcd", 4).ok());
    EXPECT_THAT(std::string(w.Finish().message()), HasSubstr("'x' got 4 of its 8 bytes"));
  }
  {
    GgufWriter w;
    w.AddTensor("x", TensorType::kF32, {1});
    std::string out;
    ASSERT_TRUE(w.Begin(&out).ok());
    EXPECT_FALSE(w.Append("abcdefgh", 8).ok());
  }
}

TEST(GgufTest, EveryTruncationFailsCleanly) {
  const std::string full = SmallFile();
  ASSERT_TRUE(GgufFile::FromBuffer(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    auto f = GgufFile::FromBuffer(full.substr(0, n), "cut.gguf");
    ASSERT_FALSE(f.ok()) << "prefix " << n << " of " << full.size() << " was accepted";
    ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    ASSERT_THAT(std::string(f.status().message()), HasSubstr("cut.gguf"));
  }
}

TEST(GgufTest, HeaderErrors) {
  EXPECT_THAT(ErrorOf("GGU"), HasSubstr("not a GGUF file"));
  EXPECT_THAT(ErrorOf(Raw().Put<uint32_t>(0x12345678).Put<uint32_t>(3).str()), HasSubstr("magic is '78563412'"));
  EXPECT_THAT(ErrorOf(Raw().Header(1, 0, 0).str()), HasSubstr("version 1 is not supported"));
  EXPECT_THAT(ErrorOf(Raw().Header(4, 0, 0).str()), HasSubstr("unsupported GGUF version 4"));
  EXPECT_THAT(ErrorOf(Raw().Header(0x03000000, 0, 0).str()), HasSubstr("big-endian"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1ull << 60).str()), HasSubstr("metadata count 1152921504606846976 is "
                                                                        "impossible"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 1ull << 62, 0).str()), HasSubstr("tensor count"));
  EXPECT_EQ(ErrorOf(Raw().Header(2, 0, 0).str()), "OK");  // v2, empty
}

TEST(GgufTest, MetadataErrors) {
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Put<uint64_t>(1ull << 50).Bytes(16).str()), HasSubstr("has length"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("").Put<uint32_t>(0).Put<uint8_t>(1).str()),
              HasSubstr("empty key"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("k").Put<uint32_t>(13).Put<uint64_t>(0).str()),
              HasSubstr("unknown value type 13"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("k").Put<uint32_t>(7).Put<uint8_t>(2).str()),
              HasSubstr("bool value 2"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("k").Put<uint32_t>(8).Put<uint64_t>(99).Bytes(10).str()),
              HasSubstr("value of 'k' has length 99"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 2).KvU32("k", 1).KvU32("k", 2).str()), HasSubstr("duplicate metadata key "
                                                                                          "'k'"));
  // Arrays: unknown element type, a count larger than the file, a string count too.
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("a").Put<uint32_t>(9).Put<uint32_t>(77).Put<uint64_t>(0).str()),
              HasSubstr("unknown value type 77"));
  EXPECT_THAT(
      ErrorOf(Raw().Header(3, 0, 1).Str("a").Put<uint32_t>(9).Put<uint32_t>(6).Put<uint64_t>(1ull << 61).str()),
      HasSubstr("array 'a' claims 2305843009213693952 elements"));
  EXPECT_THAT(
      ErrorOf(Raw().Header(3, 0, 1).Str("a").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(1000).Bytes(64).str()),
      HasSubstr("claims 1000 elements of type string"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("a").Put<uint32_t>(9).Put<uint32_t>(7).Put<uint64_t>(2)
                          .Put<uint8_t>(1).Put<uint8_t>(3).str()),
              HasSubstr("element 1: bool value 3"));
  // Arrays nested too deep.
  Raw deep;
  deep.Header(3, 0, 1).Str("d").Put<uint32_t>(9);
  for (int i = 0; i < 20; ++i) deep.Put<uint32_t>(9).Put<uint64_t>(1);
  deep.Bytes(64);
  EXPECT_THAT(ErrorOf(deep.str()), HasSubstr("nested deeper"));
  // general.alignment: wrong type, not a power of two.
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).Str("general.alignment").Put<uint32_t>(10).Put<uint64_t>(32).str()),
              HasSubstr("general.alignment has type u64, expected u32"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).KvU32("general.alignment", 24).str()), HasSubstr("not a power of two"));
  EXPECT_THAT(ErrorOf(Raw().Header(3, 0, 1).KvU32("general.alignment", 0).str()), HasSubstr("not a power of two"));
}

// A one-tensor file around the given tensor info, with `data` bytes of data.
std::string OneTensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data,
                      std::string_view name = "w") {
  Raw r;
  r.Header(3, 1, 0).Tensor(name, std::move(ne), type, offset).PadTo(32).Bytes(data);
  return r.str();
}

TEST(GgufTest, TensorErrors) {
  EXPECT_EQ(ErrorOf(OneTensor({4, 2}, 0, 0, 32)), "OK");
  EXPECT_THAT(ErrorOf(OneTensor({4, 2}, 0, 0, 31)),
              HasSubstr("tensor 'w' data [offset 0, size 32] runs past the end of the file"));
  EXPECT_THAT(ErrorOf(OneTensor({}, 0, 0, 32)), HasSubstr("'w' has 0 dimensions"));
  EXPECT_THAT(ErrorOf(OneTensor({1, 1, 1, 1, 1}, 0, 0, 32)), HasSubstr("'w' has 5 dimensions"));
  EXPECT_THAT(ErrorOf(OneTensor({4, 0}, 0, 0, 32)), HasSubstr("'w' dimension 1 is 0"));
  EXPECT_THAT(ErrorOf(OneTensor({1ull << 62, 1ull << 62}, 0, 0, 32)), HasSubstr("element count overflows"));
  EXPECT_THAT(ErrorOf(OneTensor({1ull << 61, 2}, 0, 0, 32)), HasSubstr("byte size overflows"));
  EXPECT_THAT(ErrorOf(OneTensor({4}, 4, 0, 32)), HasSubstr("unknown type id 4"));
  EXPECT_THAT(ErrorOf(OneTensor({4}, 99, 0, 32)), HasSubstr("unknown type id 99"));
  EXPECT_THAT(ErrorOf(OneTensor({48, 2}, 8, 0, 128)), HasSubstr("row length 48 is not a multiple of the block size 32"));
  EXPECT_THAT(ErrorOf(OneTensor({4}, 0, 8, 64)), HasSubstr("offset 8 is not a multiple of the alignment 32"));
  EXPECT_THAT(ErrorOf(OneTensor({4}, 0, 1ull << 63, 64)), HasSubstr("runs past the end"));
  EXPECT_THAT(ErrorOf(OneTensor({4}, 0, 0, 64, "")), HasSubstr("empty name"));
  EXPECT_THAT(ErrorOf(OneTensor({4}, 0, 0, 64, std::string(64, 'n'))), HasSubstr("64 bytes long"));
  // Unsupported but known types are accepted (for inspect).
  EXPECT_EQ(ErrorOf(OneTensor({256}, static_cast<uint32_t>(TensorType::kIQ2_XXS), 0, 66)), "OK");

  Raw dup;
  dup.Header(3, 2, 0).Tensor("w", {4}, 0, 0).Tensor("w", {4}, 0, 32).PadTo(32).Bytes(64);
  EXPECT_THAT(ErrorOf(dup.str()), HasSubstr("duplicate tensor name 'w'"));
  Raw overlap;
  overlap.Header(3, 2, 0).Tensor("a", {16}, 0, 0).Tensor("b", {4}, 0, 32).PadTo(32).Bytes(64);
  EXPECT_THAT(ErrorOf(overlap.str()), HasSubstr("tensor 'b' data [offset 32, size 16] overlaps tensor 'a'"));
  // A file whose tensor infos end where the padding would start.
  Raw nopad;
  nopad.Header(3, 1, 0).Tensor("w", {1}, 0, 0);
  EXPECT_THAT(ErrorOf(nopad.str()), HasSubstr("past the end of the file"));
}

TEST(GgufTest, OpenMapsAFile) {
  TempDir dir;
  const std::string path = dir.path() + "/" + "m.gguf";
  {
    std::ofstream out(path, std::ios::binary);
    const std::string bytes = SmallFile();
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->path(), path);
  EXPECT_EQ(*(*f)->GetString("t.str"), "héllo\n");
  EXPECT_EQ((*f)->file_size(), std::filesystem::file_size(path));

  auto missing = GgufFile::Open(dir.path() + "/" + "nope.gguf");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  std::ofstream(dir.path() + "/" + "empty.gguf").close();
  auto empty = GgufFile::Open(dir.path() + "/" + "empty.gguf");
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));
  auto directory = GgufFile::Open(dir.path() + "/");
  EXPECT_FALSE(directory.ok());
}

TEST(GgufTest, WriterToFileIsAtomic) {
  TempDir dir;
  const std::string path = dir.path() + "/" + "w.gguf";
  {
    GgufWriter w;
    w.AddTensor("x", TensorType::kF32, {2});
    ASSERT_TRUE(w.Begin(path).ok());
    ASSERT_TRUE(w.Append("abcd", 4).ok());
    // Abandoned: neither the file nor its temporary remains.
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.AddTensor("x", TensorType::kF32, {2});
  ASSERT_TRUE(w.Begin(path).ok());
  ASSERT_TRUE(w.Append("abcdefgh", 8).ok());
  ASSERT_TRUE(w.Finish().ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
}

// The vocabulary-only GGUF files from llama.cpp's test suite (see testdata/tokenizers).
std::string Fixture(const std::string& name) {
  return (std::filesystem::path(CAIRN_INFER_TESTDATA_DIR) / "tokenizers" / name).string();
}

// One vocabulary fixture opened both ways: mapped (Open) and from its bytes in memory.
struct BothWays {
  std::string bytes;
  std::unique_ptr<GgufFile> mapped, memory;
};
BothWays OpenBothWays(const std::string& path) {
  BothWays b;
  b.mapped = *GgufFile::Open(path);
  std::ifstream in(path, std::ios::binary);
  b.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  b.memory = *GgufFile::FromBuffer(b.bytes);
  return b;
}

// Read copies the same bytes as the mapping holds, from a mapped file (pread) and from
// a file in memory.
TEST(GgufTest, ReadCopiesTheFileBytes) {
  const BothWays both = OpenBothWays(Fixture("ggml-vocab-llama-spm.gguf"));
  const std::string& bytes = both.bytes;
  for (const GgufFile* f : {both.mapped.get(), both.memory.get()}) {
    for (const auto& [off, n] : {std::pair<size_t, size_t>{0, 16}, {1000, 4096}, {bytes.size() - 7, 7}}) {
      std::vector<uint8_t> got(n);
      f->Read(f->bytes() + off, n, got.data());
      EXPECT_EQ(std::string(got.begin(), got.end()), bytes.substr(off, n)) << off;
    }
  }
}

// Resident KiB of the mapping that holds `p` (/proc/self/smaps), or -1 when not found.
long ResidentKiB(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's first line
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("Rss:", 0) == 0) return std::strtol(line.c_str() + 4, nullptr, 10);
  }
  return -1;
}

// Dropping the metadata's pages leaves every value readable (read back from the file), and
// the mapping no longer holds them; a file in memory is untouched.
TEST(GgufTest, ReleaseMetadataPagesKeepsTheValues) {
  const BothWays both = OpenBothWays(Fixture("ggml-vocab-llama-spm.gguf"));
  for (const GgufFile* f : {both.mapped.get(), both.memory.get()}) {
    auto copy_tokens = [f] {
      std::vector<std::string> out;
      absl::StatusOr<std::vector<std::string_view>> tokens = f->GetStringArray("tokenizer.ggml.tokens");
      if (tokens.ok()) out.assign(tokens->begin(), tokens->end());
      return out;
    };
    const std::vector<std::string> before = copy_tokens();
    ASSERT_EQ(before.size(), 32000u);
    const long resident = ResidentKiB(f->bytes());
    f->ReleaseMetadataPages();
    if (f == both.mapped.get()) {
      ASSERT_GT(resident, 64) << "the tokens were just read through the mapping";
      EXPECT_LE(ResidentKiB(f->bytes()), 4) << "only a last partial page may stay";
    }
    EXPECT_EQ(copy_tokens(), before);
    EXPECT_EQ(*f->GetU32("tokenizer.ggml.bos_token_id"), 1u);
  }
}

TEST(GgufTest, OpensLlamaCppVocabularyFiles) {
  struct Case {
    const char* file;
    const char* model;
    uint64_t n_tokens;
  };
  for (const Case& c : {Case{"ggml-vocab-llama-spm.gguf", "llama", 32000},
                        Case{"ggml-vocab-bert-bge.gguf", "bert", 30522}}) {
    auto f = GgufFile::Open(Fixture(c.file));
    ASSERT_TRUE(f.ok()) << f.status();
    const GgufFile& g = **f;
    EXPECT_EQ(*g.GetString("tokenizer.ggml.model"), c.model) << c.file;
    auto tokens = g.GetStringArray("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    EXPECT_EQ(tokens->size(), c.n_tokens) << c.file;
    auto types = g.GetI32Array("tokenizer.ggml.token_type");
    ASSERT_TRUE(types.ok()) << types.status();
    EXPECT_EQ(types->size(), c.n_tokens);
    int n_tokenizer_keys = 0;
    for (const GgufKeyValue& kv : g.metadata()) n_tokenizer_keys += kv.key.rfind("tokenizer.", 0) == 0;
    EXPECT_GE(n_tokenizer_keys, 5) << c.file;
    EXPECT_TRUE(g.tensors().empty());
  }
  auto spm = GgufFile::Open(Fixture("ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(spm.ok());
  EXPECT_EQ((*spm)->GetStringArray("tokenizer.ggml.tokens")->at(1), "<s>");
  EXPECT_EQ(*(*spm)->GetU32("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ((*spm)->GetF32Array("tokenizer.ggml.scores")->size(), 32000u);
}

}  // namespace
}  // namespace cairn::infer
