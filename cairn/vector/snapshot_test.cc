#include "cairn/vector/snapshot.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "cairn/base/temp_dir.h"
#include "cairn/vector/wal.h"

namespace cairn::vector {
namespace {

std::string WriteSample(const std::string& file, bool vectors_inline) {
  std::vector<uint64_t> ids = {3, 9, 1000};
  std::vector<Attributes> attrs = {{{"a", int64_t{1}}}, {}, {{"tags", Tags{"x"}}, {"s", std::string("v")}}};
  SnapshotHeader h;
  h.seq = 77;
  h.dim = 4;
  h.metric = Metric::kCosine;
  h.vectors_inline = vectors_inline;
  auto st = WriteSnapshot(file, h, ids, [&](size_t i, std::span<float> v, const Attributes** a) {
    *a = &attrs[i];
    for (size_t d = 0; d < v.size(); ++d) v[d] = static_cast<float>(i * 10 + d);
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
  return file;
}

TEST(SnapshotFile, RoundTrip) {
  TempDir dir;
  for (bool inline_vectors : {true, false}) {
    auto path = WriteSample((std::filesystem::path(dir.path()) / "points.snap").string(), inline_vectors);
    auto s = SnapshotFile::Open(path);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->header().seq, 77u);
    EXPECT_EQ((*s)->header().count, 3u);
    EXPECT_EQ((*s)->header().vectors_inline, inline_vectors);
    EXPECT_EQ((*s)->id(2), 1000u);
    if (inline_vectors) {
      std::vector<float> v(4);
      (*s)->Vector(1, v);
      EXPECT_EQ(v, (std::vector<float>{10, 11, 12, 13}));
    }
    if (inline_vectors) {
      // Version 2 aligns the ids and the rows in the mapping, so they can be used in place.
      ASSERT_EQ((*s)->Ids().size(), 3u);
      EXPECT_EQ((*s)->Ids()[1], 9u);
      ASSERT_EQ((*s)->Vectors().size(), 12u);
      EXPECT_EQ(reinterpret_cast<uintptr_t>((*s)->Vectors().data()) % 64, 0u);
      // Writes to the adopted rows stay in the process: the file is unchanged.
      std::span<float> rows = (*s)->MutableVectors();
      ASSERT_EQ(rows.size(), 12u);
      rows[0] = 42;
      auto again = SnapshotFile::Open(path);
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ((*again)->Vectors()[0], 0.0f);
    }
    auto attrs_or = (*s)->DecodeAttributes();
    ASSERT_TRUE(attrs_or.ok()) << attrs_or.status();
    auto& attrs = *attrs_or;
    ASSERT_EQ(attrs.size(), 3u);
    EXPECT_EQ(std::get<Tags>(attrs[2].at("tags")), Tags{"x"});
  }
  EXPECT_TRUE(absl::IsNotFound(SnapshotFile::Open((std::filesystem::path(dir.path()) / "none").string()).status()));
}

// Files of version 1 (no alignment padding) still load.
TEST(SnapshotFile, ReadsVersion1) {
  ByteWriter p;
  p.U64(5);   // seq
  p.U32(2);   // dim
  p.U8(static_cast<uint8_t>(Metric::kL2));
  p.U8(1);    // vectors inline
  p.U64(2);   // count
  p.U64(7);
  p.U64(8);
  for (float v : {1.0f, 2.0f, 3.0f, 4.0f}) p.F32(v);
  EncodeAttributes({{"a", int64_t{1}}}, &p);
  EncodeAttributes({}, &p);
  const std::string bytes = SealEnvelope(MakeMagic("CVSN"), 1, p.data());
  auto s = SnapshotFile::Parse(bytes, "v1.snap");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->header().seq, 5u);
  EXPECT_EQ((*s)->id(1), 8u);
  std::vector<float> v(2);
  (*s)->Vector(1, v);
  EXPECT_EQ(v, (std::vector<float>{3, 4}));
  auto attrs = (*s)->DecodeAttributes();
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(std::get<int64_t>((*attrs)[0].at("a")), 1);
  EXPECT_TRUE((*attrs)[1].empty());
}

TEST(SnapshotFile, DamageIsAClearError) {
  TempDir dir;
  auto path = WriteSample((std::filesystem::path(dir.path()) / "points.snap").string(), true);
  std::string bytes = *ReadWholeFile(path);
  for (size_t n = 0; n < bytes.size(); n += 7) {
    auto s = SnapshotFile::Parse(std::string_view(bytes).substr(0, n), path);
    ASSERT_FALSE(s.ok()) << n;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(s.status().message().find(path), std::string::npos);
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string b = bytes;
    b[i] ^= 0x04;
    auto s = SnapshotFile::Parse(b, path);
    EXPECT_FALSE(s.ok() && (*s)->DecodeAttributes().ok()) << i;
  }
}

}  // namespace
}  // namespace cairn::vector
