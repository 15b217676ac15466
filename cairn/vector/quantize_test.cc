#include "cairn/vector/quantize.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/base/random.h"
#include "cairn/vector/distance.h"
#include "gtest/gtest.h"

namespace cairn::vector {
namespace {

std::vector<float> RandomRows(size_t n, size_t dim, uint64_t seed, float lo = -1, float hi = 1) {
  SplitMix64 rng(seed);
  std::vector<float> out(n * dim);
  for (float& x : out) x = lo + static_cast<float>(rng.NextDouble()) * (hi - lo);
  return out;
}

// Rows around a few random centres: structure k-means can find.
std::vector<float> ClusteredRows(size_t n, size_t dim, size_t clusters, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> centres = RandomRows(clusters, dim, seed + 1, -3, 3);
  std::vector<float> out(n * dim);
  for (size_t r = 0; r < n; ++r) {
    const size_t c = rng.Next() % clusters;
    for (size_t i = 0; i < dim; ++i) {
      out[r * dim + i] = centres[c * dim + i] + 0.2f * static_cast<float>(rng.NextDouble() - 0.5);
    }
  }
  return out;
}

std::vector<float> Unit(std::vector<float> v) {
  double n2 = 0;
  for (float x : v) n2 += double{x} * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n2));
  return v;
}

double ExactDistance(Metric m, const std::vector<float>& q, const std::vector<float>& x) {
  double s = 0;
  const std::vector<float> qq = m == Metric::kCosine ? Unit(q) : q;
  for (size_t i = 0; i < q.size(); ++i) {
    s += m == Metric::kL2 ? (double{qq[i]} - x[i]) * (double{qq[i]} - x[i]) : double{qq[i]} * x[i];
  }
  return m == Metric::kL2 ? s : 1.0 - s;
}

// Every strict prefix and every single-bit flip of a blob must be refused.
template <typename Q>
void ExpectRejectsDamage(const std::string& blob) {
  for (size_t len = 0; len < blob.size(); ++len) {
    EXPECT_FALSE(Q::Deserialize(blob.substr(0, len)).ok()) << "prefix " << len;
  }
  for (size_t i = 0; i < blob.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      EXPECT_FALSE(Q::Deserialize(bad).ok()) << "byte " << i << " bit " << bit;
    }
  }
  EXPECT_FALSE(Q::Deserialize(blob + "x").ok());
}

// ---------------------------------------------------------------------------- SQ8

TEST(Sq8Quantizer, TrainRejectsBadInput) {
  EXPECT_FALSE(Sq8Quantizer::Train({}, 4).ok());
  const std::vector<float> five(5, 1.f);
  EXPECT_FALSE(Sq8Quantizer::Train(five, 0).ok());
  EXPECT_FALSE(Sq8Quantizer::Train(five, 2).ok());
  std::vector<float> nan = {1, std::numeric_limits<float>::quiet_NaN()};
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(nan, 2);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("non-finite"), std::string_view::npos) << q.status();
  const std::vector<float> huge = {-3.4e38f, 3.4e38f};
  EXPECT_FALSE(Sq8Quantizer::Train(huge, 1).ok());
}

TEST(Sq8Quantizer, ReconstructionErrorAtMostHalfAStep) {
  const size_t dim = 37, n = 400;
  std::vector<float> data = RandomRows(n, dim, 3, -5, 7);
  for (size_t r = 0; r < n; ++r) data[r * dim + 5] = 2.5f;  // a constant dimension
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(data, dim);
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->dim(), dim);
  ASSERT_EQ(q->code_size(), dim);
  std::vector<uint8_t> code(dim);
  std::vector<float> back(dim);
  for (size_t r = 0; r < n; ++r) {
    q->Encode(data.data() + r * dim, code.data());
    q->Decode(code.data(), back.data());
    for (size_t i = 0; i < dim; ++i) {
      ASSERT_LE(std::fabs(back[i] - data[r * dim + i]), q->step()[i] * 0.5f * 1.0001f + 1e-6f)
          << "row " << r << " dim " << i;
    }
  }
  // The range is widened a little beyond the sample: min and max get interior codes.
  for (size_t i = 0; i < dim; ++i) EXPECT_GT(q->step()[i], 0) << i;
}

TEST(Sq8Quantizer, ClampsOutsideTheTrainedRange) {
  const std::vector<float> data = {0, 10, 1, 20};
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(data, 2);
  ASSERT_TRUE(q.ok());
  const float x[2] = {-100, 1e30f};
  uint8_t code[2];
  q->Encode(x, code);
  EXPECT_EQ(code[0], 0);
  EXPECT_EQ(code[1], 255);
  const float nan[2] = {std::numeric_limits<float>::quiet_NaN(), 0.5f};
  q->Encode(nan, code);  // no UB; NaN maps to the bottom code
  EXPECT_EQ(code[0], 0);
}

TEST(Sq8Quantizer, DistanceEqualsExactDistanceToDecodedVector) {
  const size_t dim = 96, n = 300;
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(m)));
    std::vector<float> data = RandomRows(n, dim, 11);
    if (m == Metric::kCosine) {
      for (size_t r = 0; r < n; ++r) {
        std::vector<float> row(data.begin() + r * dim, data.begin() + (r + 1) * dim);
        row = Unit(row);
        std::copy(row.begin(), row.end(), data.begin() + r * dim);
      }
    }
    absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(data, dim);
    ASSERT_TRUE(q.ok());
    const std::vector<float> queries = RandomRows(10, dim, 12);
    Sq8Quantizer::Query prepared;
    std::vector<uint8_t> code(dim);
    std::vector<float> back(dim);
    for (size_t qi = 0; qi < 10; ++qi) {
      const std::vector<float> query(queries.begin() + qi * dim, queries.begin() + (qi + 1) * dim);
      q->PrepareQuery(query.data(), m, &prepared);
      for (size_t r = 0; r < n; r += 7) {
        q->Encode(data.data() + r * dim, code.data());
        q->Decode(code.data(), back.data());
        const double want = ExactDistance(m, query, back);
        ASSERT_NEAR(q->Distance(prepared, code.data()), want, 1e-4 * (1 + std::fabs(want)))
            << "row " << r;
      }
    }
  }
}

TEST(Sq8Quantizer, SerializeRoundTrips) {
  const std::vector<float> data = RandomRows(50, 13, 5);
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(data, 13);
  ASSERT_TRUE(q.ok());
  const std::string blob = q->Serialize();
  absl::StatusOr<Sq8Quantizer> back = Sq8Quantizer::Deserialize(blob);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), blob);
  std::vector<uint8_t> a(13), b(13);
  q->Encode(data.data(), a.data());
  back->Encode(data.data(), b.data());
  EXPECT_EQ(a, b);
}

// Written by version 1 of the format from Train({0, -1, 10, 2.5, 2, 4}, dim 3);
// decoding must keep working as the code evolves.
constexpr char kSq8Golden[] = "43535138010000001c0000000000000003000000cdcc4cbc85eb81bf7b147e40d53b223c33ae423c33aec23ce4e51dd9c4f51539";

TEST(Sq8Quantizer, GoldenBlobDecodes) {
  const std::vector<float> data = {0, -1, 10, 2.5f, 2, 4};
  absl::StatusOr<Sq8Quantizer> trained = Sq8Quantizer::Train(data, 3);
  ASSERT_TRUE(trained.ok());
  absl::StatusOr<std::string> blob = HexDecode(kSq8Golden);
  ASSERT_TRUE(blob.ok()) << HexEncode(trained->Serialize());
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Deserialize(*blob);
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->dim(), 3u);
  EXPECT_FLOAT_EQ(q->lo()[0], -0.0125f);
  EXPECT_FLOAT_EQ(q->step()[0], 2.525f / 255);
  EXPECT_FLOAT_EQ(q->lo()[1], -1.015f);
  EXPECT_EQ(q->Serialize(), *blob);
  EXPECT_EQ(trained->Serialize(), *blob);
}

TEST(Sq8Quantizer, RejectsTruncatedAndCorruptedBlobs) {
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(RandomRows(20, 5, 9), 5);
  ASSERT_TRUE(q.ok());
  ExpectRejectsDamage<Sq8Quantizer>(q->Serialize());
}

TEST(Sq8Quantizer, RejectsInvalidPayloadsBehindAValidChecksum) {
  const uint32_t magic = MakeMagic("CSQ8");
  auto payload = [](uint32_t dim, float lo, float step) {
    ByteWriter w;
    w.U32(dim);
    for (uint32_t i = 0; i < dim; ++i) w.F32(lo);
    for (uint32_t i = 0; i < dim; ++i) w.F32(step);
    return w.Take();
  };
  EXPECT_TRUE(Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, payload(2, 0, 1))).ok());
  EXPECT_FALSE(Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, payload(0, 0, 1))).ok());
  EXPECT_FALSE(Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, payload(2, 0, 0))).ok());
  EXPECT_FALSE(Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, payload(2, 0, -1))).ok());
  EXPECT_FALSE(
      Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, payload(2, std::nanf(""), 1))).ok());
  EXPECT_FALSE(Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, payload(1, 3e38f, 1e37f))).ok());
  EXPECT_FALSE(Sq8Quantizer::Deserialize(SealEnvelope(magic, 2, payload(2, 0, 1))).ok());
  // A dimension that claims more data than the blob holds.
  ByteWriter w;
  w.U32(1000000);
  absl::StatusOr<Sq8Quantizer> big = Sq8Quantizer::Deserialize(SealEnvelope(magic, 1, w.data()));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("past the end"), std::string_view::npos) << big.status();
}

// ---------------------------------------------------------------------------- PQ

TEST(PqQuantizer, TrainRejectsBadInput) {
  const std::vector<float> data = RandomRows(64, 8, 1);
  EXPECT_FALSE(PqQuantizer::Train(data, 8, 3, 4).ok());   // m does not divide dim
  EXPECT_FALSE(PqQuantizer::Train(data, 8, 0, 4).ok());
  EXPECT_FALSE(PqQuantizer::Train(data, 8, 2, 0).ok());
  EXPECT_FALSE(PqQuantizer::Train(data, 8, 2, 9).ok());
  EXPECT_FALSE(PqQuantizer::Train(data, 8, 2, 7).ok());   // 64 rows < 128 centroids
  EXPECT_TRUE(PqQuantizer::Train(data, 8, 2, 6).ok());
  std::vector<float> inf = data;
  inf[17] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(PqQuantizer::Train(inf, 8, 2, 4).ok());
}

double MeanSquaredError(const PqQuantizer& pq, const std::vector<float>& data,
                        const std::vector<uint8_t>& codes) {
  const size_t dim = pq.dim(), n = data.size() / dim;
  std::vector<float> back(dim);
  double err = 0;
  for (size_t r = 0; r < n; ++r) {
    pq.Decode(codes.data() + r * pq.code_size(), back.data());
    for (size_t i = 0; i < dim; ++i) err += std::pow(back[i] - data[r * dim + i], 2);
  }
  return err / n;
}

TEST(PqQuantizer, EncodingBeatsRandomCodesByFar) {
  const size_t dim = 32, n = 2000, m = 8;
  const std::vector<float> data = ClusteredRows(n, dim, 20, 21);
  absl::StatusOr<PqQuantizer> pq = PqQuantizer::Train(data, dim, m, 5, 7);
  ASSERT_TRUE(pq.ok()) << pq.status();
  EXPECT_EQ(pq->code_size(), m);
  EXPECT_EQ(pq->centroids_per_subspace(), 32u);
  std::vector<uint8_t> codes(n * m), random(n * m);
  for (size_t r = 0; r < n; ++r) pq->Encode(data.data() + r * dim, codes.data() + r * m);
  SplitMix64 rng(5);
  for (uint8_t& c : random) c = static_cast<uint8_t>(rng.Next() % 32);
  const double encoded = MeanSquaredError(*pq, data, codes);
  const double baseline = MeanSquaredError(*pq, data, random);
  EXPECT_LT(encoded, 0.1 * baseline) << encoded << " vs " << baseline;
  // Each sub-vector gets its nearest centroid: no other code does better.
  const size_t dsub = dim / m;
  for (size_t r = 0; r < 50; ++r) {
    for (size_t j = 0; j < m; ++j) {
      const float* x = data.data() + r * dim + j * dsub;
      const float* cen = pq->centroids().data() + j * 32 * dsub;
      const float chosen = ScalarKernels().l2sq(x, cen + codes[r * m + j] * dsub, dsub);
      for (size_t c = 0; c < 32; ++c) {
        ASSERT_LE(chosen, ScalarKernels().l2sq(x, cen + c * dsub, dsub) * (1 + 1e-6f));
      }
    }
  }
}

TEST(PqQuantizer, AdcDistanceEqualsDistanceToDecodedVector) {
  const size_t dim = 24, n = 600, m = 6;
  const std::vector<float> data = ClusteredRows(n, dim, 10, 31);
  absl::StatusOr<PqQuantizer> pq = PqQuantizer::Train(data, dim, m, 8, 3);
  ASSERT_TRUE(pq.ok()) << pq.status();
  const std::vector<float> queries = RandomRows(5, dim, 32, -3, 3);
  std::vector<uint8_t> code(m);
  std::vector<float> back(dim);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(metric)));
    PqQuantizer::Query prepared;
    for (size_t qi = 0; qi < 5; ++qi) {
      const std::vector<float> q(queries.begin() + qi * dim, queries.begin() + (qi + 1) * dim);
      pq->PrepareQuery(q.data(), metric, &prepared);
      ASSERT_EQ(prepared.table.size(), m * 256);
      for (size_t r = 0; r < n; r += 13) {
        pq->Encode(data.data() + r * dim, code.data());
        pq->Decode(code.data(), back.data());
        const double want = ExactDistance(metric, q, back);
        ASSERT_NEAR(pq->Distance(prepared, code.data()), want, 1e-4 * (1 + std::fabs(want)));
      }
    }
  }
}

TEST(PqQuantizer, TrainingIsDeterministicForASeed) {
  const std::vector<float> data = ClusteredRows(300, 16, 8, 41);
  absl::StatusOr<PqQuantizer> a = PqQuantizer::Train(data, 16, 4, 4, 99);
  absl::StatusOr<PqQuantizer> b = PqQuantizer::Train(data, 16, 4, 4, 99);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Serialize(), b->Serialize());
}

TEST(PqQuantizer, SerializeRoundTrips) {
  const std::vector<float> data = ClusteredRows(300, 16, 8, 43);
  absl::StatusOr<PqQuantizer> pq = PqQuantizer::Train(data, 16, 4, 4);
  ASSERT_TRUE(pq.ok());
  const std::string blob = pq->Serialize();
  absl::StatusOr<PqQuantizer> back = PqQuantizer::Deserialize(blob);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), blob);
  EXPECT_EQ(back->dim(), 16u);
  EXPECT_EQ(back->code_size(), 4u);
  EXPECT_EQ(back->nbits(), 4u);
}

// Version 1 of the format: dim 2, m 2, nbits 1, centroids {0, 1 | 2, 3}.
constexpr char kPqGolden[] = "43505138010000001900000000000000020000000200000001000000000000803f0000004000004040e4ab1ddbf4a29812";

TEST(PqQuantizer, GoldenBlobDecodes) {
  ByteWriter w;
  w.U32(2);
  w.U32(2);
  w.U8(1);
  for (float c : {0.f, 1.f, 2.f, 3.f}) w.F32(c);
  const std::string built = SealEnvelope(MakeMagic("CPQ8"), 1, w.data());
  absl::StatusOr<std::string> blob = HexDecode(kPqGolden);
  ASSERT_TRUE(blob.ok()) << HexEncode(built);
  EXPECT_EQ(*blob, built);
  absl::StatusOr<PqQuantizer> pq = PqQuantizer::Deserialize(*blob);
  ASSERT_TRUE(pq.ok()) << pq.status();
  const float x[2] = {0.9f, 2.2f};
  uint8_t code[2];
  pq->Encode(x, code);
  EXPECT_EQ(code[0], 1);
  EXPECT_EQ(code[1], 0);
  float back[2];
  pq->Decode(code, back);
  EXPECT_EQ(back[0], 1.f);
  EXPECT_EQ(back[1], 2.f);
}

TEST(PqQuantizer, RejectsTruncatedAndCorruptedBlobs) {
  absl::StatusOr<PqQuantizer> pq = PqQuantizer::Train(ClusteredRows(40, 4, 3, 51), 4, 2, 2);
  ASSERT_TRUE(pq.ok());
  ExpectRejectsDamage<PqQuantizer>(pq->Serialize());
}

TEST(PqQuantizer, RejectsInvalidPayloadsBehindAValidChecksum) {
  const uint32_t magic = MakeMagic("CPQ8");
  auto payload = [](uint32_t dim, uint32_t m, uint8_t nbits, size_t values, float v) {
    ByteWriter w;
    w.U32(dim);
    w.U32(m);
    w.U8(nbits);
    for (size_t i = 0; i < values; ++i) w.F32(v);
    return w.Take();
  };
  EXPECT_TRUE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 2, 2, 16, 1))).ok());
  EXPECT_FALSE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 3, 2, 16, 1))).ok());
  EXPECT_FALSE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 0, 2, 16, 1))).ok());
  EXPECT_FALSE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 2, 9, 16, 1))).ok());
  EXPECT_FALSE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(0, 1, 2, 0, 1))).ok());
  EXPECT_FALSE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 2, 2, 15, 1))).ok());
  EXPECT_FALSE(PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 2, 2, 17, 1))).ok());
  EXPECT_FALSE(
      PqQuantizer::Deserialize(SealEnvelope(magic, 1, payload(4, 2, 2, 16, std::nanf("")))).ok());
}

// Codes from outside (e.g. a corrupt file) cannot index past the lookup tables.
TEST(PqQuantizer, OutOfRangeCodesStayInsideTheTables) {
  absl::StatusOr<PqQuantizer> pq = PqQuantizer::Train(ClusteredRows(40, 4, 3, 53), 4, 2, 2);
  ASSERT_TRUE(pq.ok());
  PqQuantizer::Query q;
  const float x[4] = {0, 0, 0, 0};
  pq->PrepareQuery(x, Metric::kL2, &q);
  const uint8_t bad[2] = {255, 255};
  float back[4];
  pq->Decode(bad, back);
  EXPECT_TRUE(std::isfinite(pq->Distance(q, bad)));
}

}  // namespace
}  // namespace cairn::vector
