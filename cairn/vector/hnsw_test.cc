#include "cairn/vector/hnsw.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "cairn/base/random.h"
#include "cairn/vector/internal/hnsw_format.h"
#include "cairn/vector/internal/slot_table.h"
#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace cairn::vector {
namespace {

// Clustered data with low intrinsic dimension plus noise.
std::vector<float> Clustered(size_t n, size_t dim, uint64_t seed, size_t clusters = 32) {
  SplitMix64 rng(seed);
  auto gauss = [&] {
    double u1 = rng.NextDouble() + 1e-12, u2 = rng.NextDouble();
    return static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  SplitMix64 crng(1234);  // same centres for base and queries
  auto cgauss = [&] {
    double u1 = crng.NextDouble() + 1e-12, u2 = crng.NextDouble();
    return static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  const size_t latent = 8;
  std::vector<float> centres(clusters * dim), basis(clusters * latent * dim);
  for (auto& c : centres) c = 3 * cgauss();
  for (auto& b : basis) b = cgauss() / std::sqrt(float(latent));
  std::vector<float> out(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng.Next() % clusters;
    float z[latent];
    for (auto& x : z) x = gauss();
    for (size_t d = 0; d < dim; ++d) {
      float v = centres[c * dim + d] + 0.1f * gauss();
      for (size_t l = 0; l < latent; ++l) v += z[l] * basis[(c * latent + l) * dim + d];
      out[i * dim + d] = v;
    }
  }
  return out;
}

float RefDist(const float* a, const float* b, size_t dim, Metric m) {
  if (m == Metric::kL2) {
    float s = 0;
    for (size_t i = 0; i < dim; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
  }
  double na = 0, nb = 0, dot = 0;
  for (size_t i = 0; i < dim; ++i) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (m == Metric::kCosine) return float(1 - dot / std::sqrt(na * nb));
  return float(1 - dot);
}

// Exact top-k ids among rows whose id passes `keep`.
template <typename Keep>
std::vector<uint64_t> BruteForce(const std::vector<float>& base, const std::vector<uint64_t>& ids,
                                 const float* q, size_t dim, size_t k, Metric m, Keep keep) {
  std::vector<std::pair<float, uint64_t>> d;
  for (size_t i = 0; i < ids.size(); ++i)
    if (keep(ids[i])) d.push_back({RefDist(base.data() + i * dim, q, dim, m), ids[i]});
  const size_t kk = std::min(k, d.size());
  std::partial_sort(d.begin(), d.begin() + kk, d.end());
  std::vector<uint64_t> out;
  for (size_t i = 0; i < kk; ++i) out.push_back(d[i].second);
  return out;
}

std::vector<uint64_t> Iota(size_t n, uint64_t start = 0) {
  std::vector<uint64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + i * 7;  // non-dense ids
  return v;
}

template <typename Keep>
double Recall(const HnswIndex& idx, const std::vector<float>& base,
              const std::vector<uint64_t>& ids, const std::vector<float>& queries, size_t dim,
              size_t k, size_t ef, Keep keep, const Filter* filter = nullptr) {
  size_t hit = 0, total = 0;
  const size_t nq = queries.size() / dim;
  for (size_t qi = 0; qi < nq; ++qi) {
    const float* q = queries.data() + qi * dim;
    auto truth = BruteForce(base, ids, q, dim, k, idx.metric(), keep);
    SearchParams p;
    p.k = k;
    p.ef = ef;
    p.filter = filter;
    auto res = idx.Search(std::span<const float>(q, dim), p);
    EXPECT_TRUE(res.ok()) << res.status();
    if (!res.ok()) return 0;
    std::set<uint64_t> t(truth.begin(), truth.end());
    for (const auto& nb : *res) hit += t.count(nb.id);
    total += truth.size();
  }
  return total ? double(hit) / double(total) : 1.0;
}

auto All = [](uint64_t) { return true; };

std::unique_ptr<HnswIndex> Build(const HnswOptions& o, const std::vector<uint64_t>& ids,
                                 const std::vector<float>& base, size_t threads = 1) {
  auto idx = HnswIndex::Create(o);
  EXPECT_TRUE(idx.ok()) << idx.status();
  EXPECT_TRUE((*idx)->AddBatch(ids, base, threads).ok());
  return std::move(*idx);
}

constexpr size_t kDim = 32;

TEST(HnswTest, CreateRejectsBadOptions) {
  HnswOptions o;
  EXPECT_FALSE(HnswIndex::Create(o).ok());  // dim 0
  o.dim = 8;
  o.M = 1;
  EXPECT_FALSE(HnswIndex::Create(o).ok());
  o.M = 16;
  EXPECT_TRUE(HnswIndex::Create(o).ok());
}

TEST(HnswTest, RejectsBadVectors) {
  HnswOptions o;
  o.dim = 4;
  o.metric = Metric::kCosine;
  auto idx = *HnswIndex::Create(o);
  std::vector<float> v3 = {1, 2, 3};
  auto st = idx->Add(1, v3);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(st.message()).find("3 values"), std::string::npos) << st;
  std::vector<float> nan = {1, NAN, 0, 0};
  EXPECT_FALSE(idx->Add(1, nan).ok());
  std::vector<float> zero = {0, 0, 0, 0};
  EXPECT_FALSE(idx->Add(1, zero).ok());
  EXPECT_EQ(idx->Remove(5).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(idx->Get(5).ok());
  auto r = idx->Search(std::vector<float>{1, 0, 0, 0}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

class HnswMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(HnswMetricTest, RecallAgainstBruteForce) {
  const size_t n = 3000;
  auto base = Clustered(n, kDim, 1);
  auto queries = Clustered(100, kDim, 2);
  if (GetParam() == Metric::kInnerProduct) {  // IP on unit vectors (like embeddings)
    for (size_t i = 0; i < base.size(); i += kDim) {
      double s = 0;
      for (size_t d = 0; d < kDim; ++d) s += base[i + d] * base[i + d];
      for (size_t d = 0; d < kDim; ++d) base[i + d] /= float(std::sqrt(s));
    }
  }
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.metric = GetParam();
  o.ef_construction = 64;
  auto idx = Build(o, ids, base);
  EXPECT_EQ(idx->size(), n);
  const double r = Recall(*idx, base, ids, queries, kDim, 10, 64, All);
  EXPECT_GE(r, 0.95) << MetricName(GetParam());
  // Larger ef does not lose recall.
  EXPECT_GE(Recall(*idx, base, ids, queries, kDim, 10, 200, All), r - 0.005);
  // Results are sorted and carry real distances.
  auto res = *idx->Search(std::span<const float>(queries.data(), kDim), {.k = 10});
  ASSERT_EQ(res.size(), 10u);
  for (size_t i = 1; i < res.size(); ++i) EXPECT_LE(res[i - 1].distance, res[i].distance);
  auto stored = *idx->Get(res[0].id);
  EXPECT_NEAR(res[0].distance, RefDist(stored.data(), queries.data(), kDim, GetParam()), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Hnsw, HnswMetricTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine));

TEST(HnswTest, CosineStoresNormalized) {
  HnswOptions o;
  o.dim = 3;
  o.metric = Metric::kCosine;
  auto idx = *HnswIndex::Create(o);
  ASSERT_TRUE(idx->Add(9, std::vector<float>{3, 0, 4}).ok());
  auto v = *idx->Get(9);
  EXPECT_NEAR(v[0], 0.6f, 1e-6);
  EXPECT_NEAR(v[2], 0.8f, 1e-6);
  auto r = *idx->Search(std::vector<float>{6, 0, 8}, {.k = 1});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].id, 9u);
  EXPECT_NEAR(r[0].distance, 0.0f, 1e-6);
}

TEST(HnswTest, UpsertReplaces) {
  const size_t n = 2000;
  auto base = Clustered(n, kDim, 3);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  auto idx = Build(o, ids, base);
  // Move id ids[5] onto the position of query q; it must be found there.
  auto q = Clustered(1, kDim, 99);
  ASSERT_TRUE(idx->Add(ids[5], q).ok());
  EXPECT_EQ(idx->size(), n);
  auto got = *idx->Get(ids[5]);
  EXPECT_EQ(got, q);
  auto r = *idx->Search(q, {.k = 1});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].id, ids[5]);
  EXPECT_NEAR(r[0].distance, 0, 1e-5);
  // Its old position no longer finds it at distance 0.
  auto r2 = *idx->Search(std::span<const float>(base.data() + 5 * kDim, kDim), {.k = 5});
  for (const auto& nb : r2) EXPECT_FALSE(nb.id == ids[5] && nb.distance < 1e-6);
}

TEST(HnswTest, RemoveRepairsAndReusesSlots) {
  const size_t n = 3000;
  auto base = Clustered(n, kDim, 4);
  auto queries = Clustered(100, kDim, 5);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  auto idx = Build(o, ids, base);
  absl::flat_hash_set<uint64_t> removed;
  SplitMix64 rng(7);
  for (size_t i = 0; i < n; ++i)
    if (rng.NextDouble() < 0.3) removed.insert(ids[i]);
  for (uint64_t id : removed) ASSERT_TRUE(idx->Remove(id).ok());
  EXPECT_EQ(idx->size(), n - removed.size());
  for (uint64_t id : removed) {
    EXPECT_FALSE(idx->Contains(id));
    EXPECT_EQ(idx->Remove(id).code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(idx->CountReachable(), idx->size());

  // The survivors, indexed from scratch, for comparison.
  std::vector<uint64_t> kept_ids;
  std::vector<float> kept;
  for (size_t i = 0; i < n; ++i)
    if (!removed.contains(ids[i])) {
      kept_ids.push_back(ids[i]);
      kept.insert(kept.end(), base.begin() + i * kDim, base.begin() + (i + 1) * kDim);
    }
  auto fresh = Build(o, kept_ids, kept);
  auto keep = [&](uint64_t id) { return !removed.contains(id); };
  const double r_del = Recall(*idx, base, ids, queries, kDim, 10, 64, keep);
  const double r_fresh = Recall(*fresh, kept, kept_ids, queries, kDim, 10, 64, All);
  EXPECT_GE(r_del, r_fresh - 0.02) << r_fresh;
  for (size_t qi = 0; qi < 100; ++qi) {
    auto res = *idx->Search(std::span<const float>(queries.data() + qi * kDim, kDim), {.k = 20});
    for (const auto& nb : res) EXPECT_FALSE(removed.contains(nb.id));
  }

  // Freed slots are reused: re-adding the removed ids does not grow the slot count.
  const size_t cap = idx->capacity();
  size_t i = 0;
  for (uint64_t id : removed) {
    ASSERT_TRUE(idx->Add(id + 1000000, std::span<const float>(base.data() + (i++ % n) * kDim, kDim)).ok());
  }
  EXPECT_EQ(idx->capacity(), cap);
  EXPECT_EQ(idx->CountReachable(), idx->size());
}

// Removal orders vary (callers remove in whatever order their ids come); whatever
// the order, every remaining node stays reachable from the entry point, before and
// after the sweeps that drop links into removed nodes. Clustered data is the hard
// case: a cluster whose ways in all ran through removed nodes must be linked again.
TEST(HnswTest, EveryRemovalOrderKeepsEveryNodeReachable) {
  const size_t n = 1200;
  auto base = Clustered(n, 16, 11);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = 16;
  o.M = 8;
  o.ef_construction = 32;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    auto idx = Build(o, ids, base);
    std::vector<uint64_t> order = ids;
    SplitMix64 rng(seed);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Next() % i]);
    for (size_t i = 0; i < n * 6 / 10; ++i) {
      ASSERT_TRUE(idx->Remove(order[i]).ok());
      if (i % 60 == 59) {
        ASSERT_EQ(idx->CountReachable(), idx->size()) << "seed " << seed << " after " << i + 1;
      }
    }
    ASSERT_EQ(idx->CountReachable(), idx->size()) << "seed " << seed;
  }
}

TEST(HnswTest, RemoveEverythingThenAdd) {
  auto base = Clustered(300, 8, 6);
  auto ids = Iota(300);
  HnswOptions o;
  o.dim = 8;
  auto idx = Build(o, ids, base);
  for (uint64_t id : ids) ASSERT_TRUE(idx->Remove(id).ok());
  EXPECT_EQ(idx->size(), 0u);
  EXPECT_TRUE(idx->Search(std::span<const float>(base.data(), 8), {})->empty());
  ASSERT_TRUE(idx->Add(1, std::span<const float>(base.data(), 8)).ok());
  auto r = *idx->Search(std::span<const float>(base.data(), 8), {.k = 3});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].id, 1u);
}

TEST(HnswTest, CompactReleasesMemoryAndKeepsResults) {
  const size_t n = 2000;
  auto base = Clustered(n, kDim, 8);
  auto queries = Clustered(50, kDim, 9);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  auto idx = Build(o, ids, base);
  const size_t mem_before = idx->MemoryBytes();
  absl::flat_hash_set<uint64_t> removed;
  for (size_t i = 0; i < n; ++i)
    if (i % 3 != 0) {
      removed.insert(ids[i]);
      ASSERT_TRUE(idx->Remove(ids[i]).ok());
    }
  auto keep = [&](uint64_t id) { return !removed.contains(id); };
  const double r_before = Recall(*idx, base, ids, queries, kDim, 10, 64, keep);
  ASSERT_TRUE(idx->Compact().ok());
  EXPECT_EQ(idx->size(), n - removed.size());
  EXPECT_LT(idx->MemoryBytes(), mem_before / 2);
  EXPECT_LT(idx->capacity(), n / 2);
  EXPECT_EQ(idx->CountReachable(), idx->size());
  const double r_after = Recall(*idx, base, ids, queries, kDim, 10, 64, keep);
  EXPECT_GE(r_after, r_before - 0.01);
  EXPECT_GE(r_after, 0.93);
  for (size_t i = 0; i < n; i += 3) {
    auto v = idx->Get(ids[i]);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ((*v)[0], base[i * kDim]);
  }
  // Still writable after compaction.
  ASSERT_TRUE(idx->Add(ids[1], std::span<const float>(base.data() + kDim, kDim)).ok());
  EXPECT_TRUE(idx->Contains(ids[1]));
}

TEST(HnswTest, ConcurrentInsertAndSearch) {
  const size_t n = 3000, writers = 3, readers = 2;
  auto base = Clustered(n, kDim, 10);
  auto queries = Clustered(50, kDim, 11);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  o.initial_capacity = 16;  // forces growth under load
  auto idx = *HnswIndex::Create(o);
  std::atomic<size_t> next{0};
  std::atomic<bool> done{false};
  std::atomic<size_t> searches{0};
  std::vector<std::thread> ts;
  for (size_t w = 0; w < writers; ++w)
    ts.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        EXPECT_TRUE(idx->Add(ids[i], std::span<const float>(base.data() + i * kDim, kDim)).ok());
        if (i % 97 == 0 && i > 0) (void)idx->Remove(ids[i - 1]);  // some removals too
      }
    });
  for (size_t r = 0; r < readers; ++r)
    ts.emplace_back([&, r] {
      size_t qi = r;
      while (!done.load()) {
        auto res = idx->Search(std::span<const float>(queries.data() + (qi++ % 50) * kDim, kDim),
                               {.k = 10});
        EXPECT_TRUE(res.ok());
        searches.fetch_add(1);
      }
    });
  for (size_t w = 0; w < writers; ++w) ts[w].join();
  done = true;
  for (size_t r = 0; r < readers; ++r) ts[writers + r].join();
  EXPECT_GT(searches.load(), 0u);
  // Re-add whatever was removed so the contents are exactly the base set.
  for (size_t i = 0; i < n; ++i) {
    if (!idx->Contains(ids[i])) {
      ASSERT_TRUE(idx->Add(ids[i], std::span<const float>(base.data() + i * kDim, kDim)).ok());
    }
  }
  EXPECT_EQ(idx->size(), n);
  // Concurrent pruning can, rarely, leave a node with no in-link (as in any HNSW);
  // Compact re-attaches such nodes.
  EXPECT_GE(idx->CountReachable(), n - n / 200);
  EXPECT_GE(Recall(*idx, base, ids, queries, kDim, 10, 64, All), 0.95);
  ASSERT_TRUE(idx->Compact().ok());
  EXPECT_EQ(idx->CountReachable(), n);
}

TEST(HnswTest, ParallelAddBatchRecall) {
  const size_t n = 3000;
  auto base = Clustered(n, kDim, 12);
  auto queries = Clustered(100, kDim, 13);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  auto idx = Build(o, ids, base, 4);
  EXPECT_EQ(idx->size(), n);
  EXPECT_GE(Recall(*idx, base, ids, queries, kDim, 10, 64, All), 0.95);
  std::vector<float> bad(kDim * 2, 1.0f);
  bad[kDim + 3] = INFINITY;
  std::vector<uint64_t> bids = {1, 2};
  auto st = idx->AddBatch(bids, bad, 2);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(st.message()).find("row 1"), std::string::npos) << st;
  EXPECT_EQ(idx->size(), n);  // nothing of the bad batch went in
}

class ModFilter : public Filter {
 public:
  ModFilter(uint64_t mod, bool hints, size_t n) : mod_(mod), hints_(hints), n_(n) {}
  bool Allows(uint64_t id) const override { return (id / 7) % mod_ == 0; }
  double EstimatedSelectivity() const override { return hints_ ? 1.0 / double(mod_) : -1; }
  bool ListAllowed(std::vector<uint64_t>* ids) const override {
    if (!hints_) return false;
    for (uint64_t i = 0; i < n_; i += mod_) ids->push_back(i * 7);
    return true;
  }

 private:
  uint64_t mod_;
  bool hints_;
  size_t n_;
};

TEST(HnswTest, FilteredSearch) {
  const size_t n = 4000;
  auto base = Clustered(n, kDim, 14);
  auto queries = Clustered(40, kDim, 15);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  auto idx = Build(o, ids, base);
  for (uint64_t mod : {2, 10, 100}) {
    for (bool hints : {false, true}) {
      ModFilter f(mod, hints, n);
      auto keep = [&](uint64_t id) { return f.Allows(id); };
      const double r = Recall(*idx, base, ids, queries, kDim, 10, 64, keep, &f);
      EXPECT_GE(r, 0.95) << "selectivity 1/" << mod << " hints " << hints;
      auto res = *idx->Search(std::span<const float>(queries.data(), kDim), {.k = 10, .filter = &f});
      EXPECT_EQ(res.size(), 10u);
      for (const auto& nb : res) EXPECT_TRUE(f.Allows(nb.id));
    }
  }
}

TEST(HnswTest, SaveOpenRoundTrip) {
  const size_t n = 3000;
  auto base = Clustered(n, kDim, 16);
  auto queries = Clustered(30, kDim, 17);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.metric = Metric::kCosine;
  o.ef_construction = 64;
  auto idx = Build(o, ids, base);
  for (size_t i = 0; i < 100; ++i) ASSERT_TRUE(idx->Remove(ids[i * 3]).ok());  // pending slots too
  const std::string path = ::testing::TempDir() + "/hnsw_roundtrip.idx";
  ASSERT_TRUE(idx->Save(path).ok());
  auto opened = HnswIndex::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto& o2 = **opened;
  EXPECT_EQ(o2.size(), idx->size());
  EXPECT_EQ(o2.metric(), Metric::kCosine);
  for (size_t qi = 0; qi < 30; ++qi) {
    std::span<const float> q(queries.data() + qi * kDim, kDim);
    EXPECT_EQ(*idx->Search(q, {.k = 10}), *o2.Search(q, {.k = 10}));
  }
  EXPECT_EQ(*idx->Get(ids[1]), *o2.Get(ids[1]));
  EXPECT_FALSE(o2.Contains(ids[0]));
  // Still writable.
  ASSERT_TRUE(o2.Add(ids[0], std::span<const float>(base.data(), kDim)).ok());
  EXPECT_TRUE(o2.Contains(ids[0]));
  std::remove(path.c_str());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteAll(const std::string& path, const std::string& s) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << s;
}

TEST(HnswTest, CorruptFilesGiveClearErrors) {
  auto base = Clustered(200, 8, 18);
  HnswOptions o;
  o.dim = 8;
  auto idx = Build(o, Iota(200), base);
  const std::string path = ::testing::TempDir() + "/hnsw_corrupt.idx";
  ASSERT_TRUE(idx->Save(path).ok());
  const std::string good = ReadAll(path);
  EXPECT_TRUE(HnswIndex::Open(path).ok());
  EXPECT_EQ(HnswIndex::Open(path + ".missing").status().code(), absl::StatusCode::kNotFound);

  WriteAll(path, good.substr(0, good.size() / 2));
  auto r = HnswIndex::Open(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("HNSW"), std::string::npos) << r.status();

  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  WriteAll(path, flipped);
  r = HnswIndex::Open(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("checksum"), std::string::npos) << r.status();

  WriteAll(path, "");
  EXPECT_FALSE(HnswIndex::Open(path).ok());
  std::string foreign = good;
  foreign[0] = 'X';
  WriteAll(path, foreign);
  EXPECT_FALSE(HnswIndex::Open(path).ok());
  std::remove(path.c_str());
  // Every truncation of the decoder input is refused cleanly.
  for (size_t len = 0; len < good.size(); len += 97)
    EXPECT_FALSE(HnswDecodeForTesting(std::string_view(good).substr(0, len)).ok());
  EXPECT_TRUE(HnswDecodeForTesting(good).ok());
}

TEST(HnswTest, Sq8RecallAndMemory) {
  const size_t n = 2000, kDim = 64;
  auto base = Clustered(n, kDim, 19);
  auto queries = Clustered(100, kDim, 20);
  auto ids = Iota(n);
  HnswOptions o;
  o.dim = kDim;
  o.ef_construction = 64;
  auto fidx = Build(o, ids, base);
  o.storage = HnswStorage::kSq8;
  {
    auto untrained = *HnswIndex::Create(o);
    EXPECT_FALSE(untrained->trained());
    EXPECT_EQ(untrained->Add(1, std::span<const float>(base.data(), kDim)).code(),
              absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(untrained->Train(std::span<const float>(base.data(), 500 * kDim)).ok());
    EXPECT_TRUE(untrained->Add(1, std::span<const float>(base.data(), kDim)).ok());
    EXPECT_EQ(untrained->Train(std::span<const float>(base.data(), kDim)).code(),
              absl::StatusCode::kFailedPrecondition);
  }
  auto qidx = Build(o, ids, base);  // AddBatch trains on its rows
  EXPECT_TRUE(qidx->trained());
  EXPECT_GE(Recall(*qidx, base, ids, queries, kDim, 10, 64, All), 0.95);
  EXPECT_LT(double(qidx->MemoryBytes()), 0.6 * double(fidx->MemoryBytes()));
  // Get returns the full-precision vector; distances are exact after re-ranking.
  EXPECT_EQ(*qidx->Get(ids[3]), std::vector<float>(base.begin() + 3 * kDim, base.begin() + 4 * kDim));
  auto fr = *fidx->Search(std::span<const float>(queries.data(), kDim), {.k = 5});
  auto qr = *qidx->Search(std::span<const float>(queries.data(), kDim), {.k = 5});
  ASSERT_EQ(qr.size(), 5u);
  EXPECT_EQ(qr[0], fr[0]);
  // Filters, removal and a save/open round trip work on SQ8 too.
  ModFilter f(100, true, n);
  auto keep = [&](uint64_t id) { return f.Allows(id); };
  EXPECT_GE(Recall(*qidx, base, ids, queries, kDim, 10, 64, keep, &f), 0.95);
  ASSERT_TRUE(qidx->Remove(ids[0]).ok());
  const std::string path = ::testing::TempDir() + "/hnsw_sq8.idx";
  ASSERT_TRUE(qidx->Save(path).ok());
  auto opened = HnswIndex::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  for (size_t qi = 0; qi < 20; ++qi) {
    std::span<const float> q(queries.data() + qi * kDim, kDim);
    EXPECT_EQ(*qidx->Search(q, {.k = 10}), *(*opened)->Search(q, {.k = 10}));
  }
  EXPECT_EQ(*(*opened)->Get(ids[3]), *qidx->Get(ids[3]));
  std::remove(path.c_str());
}

// The id -> slot table against a model, through growth, deletions and reuse of
// deleted buckets (ids held in a side array, as HnswIndex keeps them in its slots).
TEST(HnswSlotTable, MatchesAModel) {
  std::vector<uint64_t> id_of_slot;
  struct IdOf {
    const std::vector<uint64_t>* ids;
    uint64_t operator()(uint32_t s) const { return (*ids)[s]; }
  };
  internal::SlotTable<IdOf> table{IdOf{&id_of_slot}};
  absl::flat_hash_map<uint64_t, uint32_t> model;
  SplitMix64 rng(3);
  for (int step = 0; step < 60000; ++step) {
    const uint64_t id = rng.Next() % 5000 * 7919;  // clustered ids that collide in the table
    auto it = model.find(id);
    if (rng.Next() % 3 != 0) {
      if (it != model.end()) {
        EXPECT_EQ(table.Find(id), it->second);
        continue;
      }
      const uint32_t slot = static_cast<uint32_t>(id_of_slot.size());
      id_of_slot.push_back(id);
      ASSERT_TRUE(table.Insert(slot));
      EXPECT_FALSE(table.Insert(slot));  // the id is present now
      model[id] = slot;
    } else if (it != model.end()) {
      ASSERT_TRUE(table.Erase(it->second));
      EXPECT_FALSE(table.Erase(it->second));
      model.erase(it);
      EXPECT_EQ(table.Find(id), internal::SlotTable<IdOf>::kNone);
    }
    ASSERT_EQ(table.size(), model.size());
  }
  for (const auto& [id, slot] : model) EXPECT_EQ(table.Find(id), slot);
  EXPECT_EQ(table.Find(1), internal::SlotTable<IdOf>::kNone);
  // Reserved up front, a million entries take about 8/7 buckets each, 5 bytes a bucket.
  table.Clear();
  table.Reserve(1000000);
  EXPECT_LE(table.Bytes(), 1000000u * 5 * 8 / 7 + 1024);
}

}  // namespace
}  // namespace cairn::vector
