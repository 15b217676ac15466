#include "cairn/vector/wal.h"

#include <gtest/gtest.h>

namespace cairn::vector {
namespace {

std::vector<WalOp> SampleOps(uint64_t base) {
  std::vector<WalOp> ops(3);
  ops[0].id = base;
  ops[0].vector = {1.0f, -2.5f, 3.0f};
  ops[0].attributes = {{"kind", std::string("pump")}, {"tags", Tags{"a", "b"}}, {"t", int64_t{-4}}};
  ops[0].text = "hello world";
  ops[1].id = base + 1;
  ops[1].vector = {0.0f, 0.5f, 1.0f};
  ops[2].kind = WalOp::Kind::kDelete;
  ops[2].id = base + 2;
  return ops;
}

TEST(WalBatch, RoundTrip) {
  auto ops = SampleOps(10);
  auto decoded = DecodeWalBatch(EncodeWalBatch(42, ops));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->seq, 42u);
  ASSERT_EQ(decoded->ops.size(), 3u);
  EXPECT_EQ(decoded->ops[0].vector, ops[0].vector);
  EXPECT_EQ(decoded->ops[0].attributes, ops[0].attributes);
  EXPECT_EQ(decoded->ops[0].text, ops[0].text);
  EXPECT_FALSE(decoded->ops[1].text.has_value());
  EXPECT_EQ(decoded->ops[2].kind, WalOp::Kind::kDelete);
  // Every truncation of the payload is an error, never a crash.
  std::string payload = EncodeWalBatch(42, ops);
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(DecodeWalBatch(payload.substr(0, n)).ok()) << n;
  }
}

std::string ThreeRecords(std::vector<size_t>* ends) {
  std::string log;
  for (uint64_t s = 1; s <= 3; ++s) {
    log += EncodeWalRecord(s, SampleOps(s * 10));
    ends->push_back(log.size());
  }
  return log;
}

TEST(WalScan, CleanLog) {
  std::vector<size_t> ends;
  std::string log = ThreeRecords(&ends);
  auto scan = ScanWal(log, "wal.log");
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->records.size(), 3u);
  EXPECT_EQ(scan->valid_bytes, log.size());
  EXPECT_EQ(scan->torn_bytes, 0u);
  EXPECT_EQ(scan->records[1].offset, ends[0]);
}

TEST(WalScan, EveryTornTailIsCutAtTheLastWholeRecord) {
  std::vector<size_t> ends;
  std::string log = ThreeRecords(&ends);
  for (size_t n = ends[1] + 1; n < log.size(); ++n) {
    auto scan = ScanWal(std::string_view(log).substr(0, n), "wal.log");
    ASSERT_TRUE(scan.ok()) << n << ": " << scan.status();
    EXPECT_EQ(scan->records.size(), 2u);
    EXPECT_EQ(scan->valid_bytes, ends[1]);
    EXPECT_EQ(scan->torn_bytes, n - ends[1]);
    EXPECT_NE(scan->torn_reason.find("offset " + std::to_string(ends[1])), std::string::npos);
  }
  // A complete-length last record with a flipped bit is also a torn write.
  std::string flipped = log;
  flipped[ends[1] + 30] ^= 0x10;
  auto scan = ScanWal(flipped, "wal.log");
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->records.size(), 2u);
  EXPECT_GT(scan->torn_bytes, 0u);
}

TEST(WalScan, CorruptionInTheMiddleIsAnErrorNamingFileAndOffset) {
  std::vector<size_t> ends;
  std::string log = ThreeRecords(&ends);
  log[ends[0] + 40] ^= 0x01;  // inside record 2, with record 3 after it
  auto scan = ScanWal(log, "/data/docs/wal.log");
  ASSERT_FALSE(scan.ok());
  EXPECT_EQ(scan.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(scan.status().message().find("/data/docs/wal.log"), std::string::npos);
  EXPECT_NE(scan.status().message().find("offset " + std::to_string(ends[0])), std::string::npos);
}

}  // namespace
}  // namespace cairn::vector
