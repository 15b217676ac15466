#include "cairn/base/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kMagic = MakeMagic("TEST");

TEST(ByteWriterReader, RoundTripsEveryType) {
  ByteWriter w;
  w.U8(7);
  w.U16(0xBEEF);
  w.U32(0xDEADBEEF);
  w.U64(0x0123456789ABCDEFULL);
  w.I64(-42);
  w.F32(1.5f);
  w.F64(-2.25);
  w.Varint(0);
  w.Varint(300);
  w.Varint(~0ULL);
  w.String("hello");
  std::vector<uint32_t> arr = {1, 2, 3};
  w.Array<uint32_t>(arr);
  std::string bytes = w.Take();

  ByteReader r(bytes);
  EXPECT_EQ(r.U8(), 7);
  EXPECT_EQ(r.U16(), 0xBEEF);
  EXPECT_EQ(r.U32(), 0xDEADBEEFu);
  EXPECT_EQ(r.U64(), 0x0123456789ABCDEFULL);
  EXPECT_EQ(r.I64(), -42);
  EXPECT_EQ(r.F32(), 1.5f);
  EXPECT_EQ(r.F64(), -2.25);
  EXPECT_EQ(r.Varint(), 0u);
  EXPECT_EQ(r.Varint(), 300u);
  EXPECT_EQ(r.Varint(), ~0ULL);
  EXPECT_EQ(r.String(), "hello");
  std::vector<uint32_t> got;
  EXPECT_TRUE(r.Array<uint32_t>(3, &got));
  EXPECT_EQ(got, arr);
  EXPECT_TRUE(r.Finish().ok());
}

TEST(ByteWriterReader, IsLittleEndian) {
  ByteWriter w;
  w.U32(0x04030201);
  EXPECT_EQ(w.data(), std::string("\x01\x02\x03\x04", 4));
}

TEST(ByteReader, TruncationLatchesAndNamesTheFormat) {
  std::string bytes("\x01\x02", 2);
  ByteReader r(bytes, "Widget");
  EXPECT_EQ(r.U32(), 0u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.U8(), 0);  // stays failed
  EXPECT_THAT(r.status().message(), HasSubstr("Widget: truncated"));
}

TEST(ByteReader, HugeArrayCountFailsWithoutAllocating) {
  std::string bytes(16, '\0');
  ByteReader r(bytes);
  std::vector<uint64_t> out;
  EXPECT_FALSE(r.Array<uint64_t>(1ULL << 60, &out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, MalformedVarint) {
  std::string bytes(11, '\xff');
  ByteReader r(bytes);
  r.Varint();
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, FinishRejectsTrailingBytes) {
  std::string bytes("abc");
  ByteReader r(bytes);
  r.U8();
  EXPECT_THAT(r.Finish().message(), HasSubstr("2 unexpected trailing bytes"));
}

TEST(Envelope, RoundTrip) {
  std::string blob = SealEnvelope(kMagic, 3, "payload");
  EXPECT_EQ(blob.size(), kEnvelopeHeaderSize + 7 + kEnvelopeTrailerSize);
  auto env = OpenEnvelope(blob, kMagic, 3, "Test");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->version, 3);
  EXPECT_EQ(env->payload, "payload");
}

TEST(Envelope, GoldenBytes) {
  // The envelope layout is a compatibility promise: these bytes must never change.
  std::string blob = SealEnvelope(kMagic, 1, "ab");
  std::string expected_header("TEST\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00" "ab", 18);
  EXPECT_EQ(blob.substr(0, 18), expected_header);
}

TEST(Envelope, RejectsEveryKindOfBadInput) {
  std::string blob = SealEnvelope(kMagic, 1, "payload");
  EXPECT_THAT(OpenEnvelope(blob.substr(0, 10), kMagic, 1, "Test").status().message(),
              HasSubstr("too short"));
  EXPECT_THAT(OpenEnvelope(blob.substr(0, blob.size() - 1), kMagic, 1, "Test").status().message(),
              HasSubstr("truncated"));
  EXPECT_THAT(OpenEnvelope(blob, MakeMagic("OTHR"), 1, "Other").status().message(),
              HasSubstr("not a Other blob (magic 'TEST', expected 'OTHR')"));
  std::string v9 = SealEnvelope(kMagic, 9, "payload");
  EXPECT_THAT(OpenEnvelope(v9, kMagic, 1, "Test").status().message(),
              HasSubstr("version 9 is not supported"));
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] ^= 0x10;
    EXPECT_FALSE(OpenEnvelope(bad, kMagic, 1, "Test").ok()) << "flipped byte " << i;
  }
}

TEST(Hex, RoundTripsAndRejectsBadInput) {
  EXPECT_EQ(HexEncode(std::string("\x01\xab\x00", 3)), "01ab00");
  EXPECT_EQ(*HexDecode("01AB00"), std::string("\x01\xab\x00", 3));
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
}

}  // namespace
}  // namespace cairn
