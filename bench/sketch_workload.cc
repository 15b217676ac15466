#include "bench/sketch_workload.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string_view>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "cairn/base/random.h"
#include "cairn/sketch/bloom_filter.h"
#include "cairn/sketch/count_min.h"
#include "cairn/sketch/cuckoo_filter.h"
#include "cairn/sketch/hyperloglog.h"
#include "cairn/sketch/kll.h"
#include "cairn/sketch/top_k.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps results alive so the optimizer cannot drop the measured work.
volatile uint64_t g_sink;

// Median items/s of `repeats` runs of fn(), which processes `items` items.
template <typename Fn>
double MedianRate(int repeats, uint64_t items, Fn fn) {
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    fn();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(items / std::max(s, 1e-9));
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

template <typename Map>
double TableBytes(const Map& m) {
  return static_cast<double>(m.capacity()) * (sizeof(typename Map::slot_type) + 1);
}

struct Streams {
  std::vector<uint64_t> uniform;        // distinct-looking random 64-bit keys
  std::vector<uint64_t> absent;         // keys never inserted (for false positives)
  std::vector<uint64_t> zipf;           // Zipf(1.1) over 10 M ranks
  std::vector<float> values;            // uniform floats for quantiles
  std::string string_arena;             // backing store of string keys
  std::vector<std::string_view> strings;  // "sensor-<n>" keys, distinct
};

Streams MakeStreams(const SketchBenchOptions& o) {
  Streams s;
  std::mt19937_64 rng(o.seed);
  s.uniform.resize(o.n);
  s.absent.resize(o.n);
  for (auto& k : s.uniform) k = rng() | 1;  // odd
  for (auto& k : s.absent) k = rng() & ~uint64_t{1};  // even: never in `uniform`
  ZipfGenerator zipf(10'000'000, 1.1, o.seed + 2);
  s.zipf.resize(o.n);
  for (auto& k : s.zipf) k = zipf.Next();
  std::uniform_real_distribution<float> u(0, 1000);
  s.values.resize(o.n);
  for (auto& v : s.values) v = u(rng);
  const uint64_t nstr = std::min<uint64_t>(o.n, 2'000'000);
  std::vector<size_t> offsets;
  for (uint64_t i = 0; i < nstr; ++i) {
    offsets.push_back(s.string_arena.size());
    s.string_arena += fmt::format("sensor-{:08x}-{}", rng() & 0xffffffff, i);
  }
  offsets.push_back(s.string_arena.size());
  for (uint64_t i = 0; i < nstr; ++i) {
    s.strings.emplace_back(s.string_arena.data() + offsets[i], offsets[i + 1] - offsets[i]);
  }
  return s;
}

bool Wanted(const SketchBenchOptions& o, const std::string& name) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
}

void Progress(const char* what) { fmt::print(stderr, "  measuring {}...\n", what); }

// Bloom filter sized for n keys at 1%; exact set as the baseline.
void BenchBloom(const SketchBenchOptions& o, const Streams& s, std::vector<SketchBenchRow>* rows) {
  Progress("bloom");
  const std::string params = fmt::format("{} keys, 1% fpr", o.n);
  auto make = [&] { return *sketch::BloomFilter::Create(o.n, 0.01); };
  auto bloom = make();
  double up = MedianRate(o.repeats, o.n, [&] {
    bloom = make();
    for (uint64_t k : s.uniform) bloom.Insert(k);
  });
  uint64_t fp = 0;
  double q = MedianRate(o.repeats, o.n, [&] {
    fp = 0;
    for (uint64_t k : s.absent) fp += bloom.Contains(k);
  });
  rows->push_back({"bloom", params, "u64", up, q, double(bloom.MemoryBytes()), "false-positive rate",
                   double(fp) / o.n, 50e6, 50e6, false});
  const size_t ns = s.strings.size();
  auto sbloom = *sketch::BloomFilter::Create(ns, 0.01);
  double sup = MedianRate(o.repeats, ns, [&] {
    sbloom = *sketch::BloomFilter::Create(ns, 0.01);
    for (auto k : s.strings) sbloom.Insert(k);
  });
  uint64_t hits = 0;
  double sq = MedianRate(o.repeats, ns, [&] {
    hits = 0;
    for (auto k : s.strings) hits += sbloom.Contains(k);
  });
  g_sink = hits;
  rows->push_back({"bloom", fmt::format("{} keys, 1% fpr", ns), "string", sup, sq,
                   double(sbloom.MemoryBytes()), "false negatives", double(ns - hits), 0, 0, false});

  absl::flat_hash_set<uint64_t> set;
  double eup = MedianRate(o.repeats, o.n, [&] {
    set = {};
    for (uint64_t k : s.uniform) set.insert(k);
  });
  uint64_t found = 0;
  double eq = MedianRate(o.repeats, o.n, [&] {
    found = 0;
    for (uint64_t k : s.absent) found += set.contains(k);
  });
  g_sink = found;
  rows->push_back({"bloom", "flat_hash_set", "u64", eup, eq, TableBytes(set), "false-positive rate",
                   0, 0, 0, true});
}

void BenchCuckoo(const SketchBenchOptions& o, const Streams& s, std::vector<SketchBenchRow>* rows) {
  Progress("cuckoo");
  const uint64_t n = o.n;
  auto make = [&] { return *sketch::CuckooFilter::Create(n + n / 16, 0.001); };
  auto f = make();
  uint64_t failed = 0;
  double up = MedianRate(o.repeats, n, [&] {
    f = make();
    failed = 0;
    for (uint64_t k : s.uniform) failed += !f.Insert(k).ok();
  });
  uint64_t fp = 0;
  double q = MedianRate(o.repeats, n, [&] {
    fp = 0;
    for (uint64_t k : s.absent) fp += f.Contains(k);
  });
  rows->push_back({"cuckoo", fmt::format("{} keys, 0.1% fpr, load {:.0f}%", n, 100 * f.LoadFactor()),
                   "u64", up, q, double(f.MemoryBytes()), "false-positive rate", double(fp) / n, 0, 0,
                   false});
  const size_t ns = s.strings.size();
  auto sf = *sketch::CuckooFilter::Create(ns + ns / 16, 0.001);
  double sup = MedianRate(o.repeats, ns, [&] {
    sf = *sketch::CuckooFilter::Create(ns + ns / 16, 0.001);
    for (auto k : s.strings) failed += !sf.Insert(k).ok();
  });
  uint64_t hits = 0;
  double sq = MedianRate(o.repeats, ns, [&] {
    hits = 0;
    for (auto k : s.strings) hits += sf.Contains(k);
  });
  rows->push_back({"cuckoo", fmt::format("{} keys, 0.1% fpr", ns), "string", sup, sq,
                   double(sf.MemoryBytes()), "false negatives", double(ns - hits), 0, 0, false});
  g_sink = failed;
}

void BenchHll(const SketchBenchOptions& o, const Streams& s, std::vector<SketchBenchRow>* rows) {
  Progress("hyperloglog");
  auto hll = *sketch::HyperLogLog::Create(12);
  double up = MedianRate(o.repeats, o.n, [&] {
    hll = *sketch::HyperLogLog::Create(12);
    for (uint64_t k : s.uniform) hll.Add(k);
  });
  double est = 0;
  double q = MedianRate(o.repeats, 1000, [&] {
    for (int i = 0; i < 1000; ++i) est += hll.Estimate();
  });
  est = hll.Estimate();
  rows->push_back({"hll", "precision 12", "u64", up, q, double(hll.MemoryBytes()), "relative error",
                   std::abs(est - o.n) / o.n, 250e6, 0, false});
  const size_t ns = s.strings.size();
  auto shll = *sketch::HyperLogLog::Create(12);
  double sup = MedianRate(o.repeats, ns, [&] {
    shll = *sketch::HyperLogLog::Create(12);
    for (auto k : s.strings) shll.Add(k);
  });
  rows->push_back({"hll", "precision 12", "string", sup, 0, double(shll.MemoryBytes()),
                   "relative error", std::abs(shll.Estimate() - ns) / ns, 0, 0, false});
  absl::flat_hash_set<uint64_t> set;
  double eup = MedianRate(o.repeats, o.n, [&] {
    set = {};
    for (uint64_t k : s.uniform) set.insert(k);
  });
  rows->push_back({"hll", "flat_hash_set", "u64", eup, 0, TableBytes(set), "relative error", 0, 0, 0, true});
}

void BenchCountMin(const SketchBenchOptions& o, const Streams& s, std::vector<SketchBenchRow>* rows) {
  Progress("count-min");
  auto make = [] { return *sketch::CountMinSketch::CreateWithShape(4, 2048); };
  auto cms = make();
  double up = MedianRate(o.repeats, o.n, [&] {
    cms = make();
    for (uint64_t k : s.zipf) cms.Add(k);
  });
  absl::flat_hash_map<uint64_t, uint64_t> exact;
  double eup = MedianRate(o.repeats, o.n, [&] {
    exact = {};
    for (uint64_t k : s.zipf) exact[k]++;
  });
  // Accuracy: share of distinct keys whose over-estimate is within e/width * N.
  const double bound = std::exp(1.0) / cms.width() * o.n;
  uint64_t within = 0, sum = 0;
  std::vector<uint64_t> keys;
  keys.reserve(exact.size());
  for (const auto& [k, c] : exact) {
    keys.push_back(k);
    within += (cms.Estimate(k) - c) <= bound;
  }
  double q = MedianRate(o.repeats, keys.size(), [&] {
    for (uint64_t k : keys) sum += cms.Estimate(k);
  });
  uint64_t esum = 0;
  double eq = MedianRate(o.repeats, keys.size(), [&] {
    for (uint64_t k : keys) esum += exact.find(k)->second;
  });
  g_sink = sum + esum;
  rows->push_back({"count-min", "depth 4, width 2048", "u64", up, q, double(cms.MemoryBytes()),
                   "keys within eN/w", double(within) / exact.size(), 100e6, 0, false});
  const size_t ns = s.strings.size();
  double sup = MedianRate(o.repeats, ns, [&] {
    cms = make();
    for (auto k : s.strings) cms.Add(k);
  });
  rows->push_back({"count-min", "depth 4, width 2048", "string", sup, 0, double(cms.MemoryBytes()),
                   "", 0, 0, 0, false});
  rows->push_back({"count-min", "flat_hash_map", "u64", eup, eq, TableBytes(exact), "keys within eN/w",
                   1, 0, 0, true});
}

void BenchTopK(const SketchBenchOptions& o, const Streams& s, std::vector<SketchBenchRow>* rows) {
  Progress("top-k");
  constexpr size_t kCapacity = 1024, kTop = 100;
  auto top = *sketch::TopK<uint64_t>::Create(kCapacity);
  double up = MedianRate(o.repeats, o.n, [&] {
    top = *sketch::TopK<uint64_t>::Create(kCapacity);
    for (uint64_t k : s.zipf) top.Add(k);
  });
  absl::flat_hash_map<uint64_t, uint64_t> exact;
  std::vector<std::pair<uint64_t, uint64_t>> exact_top;
  double eup = MedianRate(o.repeats, o.n, [&] {
    exact = {};
    for (uint64_t k : s.zipf) exact[k]++;
    exact_top.assign(exact.begin(), exact.end());
    size_t k = std::min(kTop, exact_top.size());
    std::partial_sort(exact_top.begin(), exact_top.begin() + k, exact_top.end(),
                      [](const auto& a, const auto& b) { return a.second > b.second; });
    exact_top.resize(k);
  });
  uint64_t sum = 0;
  double q = MedianRate(o.repeats, 1000, [&] {
    for (int i = 0; i < 1000; ++i) sum += top.Top(kTop).size();
  });
  g_sink = sum;
  auto got = top.Top(kTop);
  absl::flat_hash_set<uint64_t> got_keys;
  for (const auto& it : got) got_keys.insert(it.key);
  size_t hit = 0;
  for (const auto& [k, c] : exact_top) hit += got_keys.contains(k);
  const double recall = exact_top.empty() ? 1.0 : double(hit) / exact_top.size();
  rows->push_back({"top-k", fmt::format("capacity {}, Zipf 1.1", kCapacity), "u64", up, q,
                   double(top.MemoryBytes()), "recall@100", recall, 70e6, 0, false});
  auto stop = *sketch::TopK<std::string>::Create(kCapacity);
  const size_t ns = s.strings.size();
  double sup = MedianRate(o.repeats, o.n, [&] {
    stop = *sketch::TopK<std::string>::Create(kCapacity);
    for (uint64_t k : s.zipf) stop.Add(s.strings[k % ns]);
  });
  rows->push_back({"top-k", fmt::format("capacity {}, Zipf 1.1", kCapacity), "string", sup, 0,
                   double(stop.MemoryBytes()), "", 0, 0, 0, false});
  rows->push_back({"top-k", "flat_hash_map + partial sort", "u64", eup, 0, TableBytes(exact),
                   "recall@100", 1, 0, 0, true});
}

void BenchKll(const SketchBenchOptions& o, const Streams& s, std::vector<SketchBenchRow>* rows) {
  Progress("kll");
  auto kll = *sketch::KllSketch<float>::Create(200);
  double up = MedianRate(o.repeats, o.n, [&] {
    kll = *sketch::KllSketch<float>::Create(200);
    for (float v : s.values) kll.Update(v);
  });
  std::vector<float> sorted;
  double eup = MedianRate(o.repeats, o.n, [&] {
    sorted.assign(s.values.begin(), s.values.end());
    std::sort(sorted.begin(), sorted.end());
  });
  double worst = 0;
  for (int i = 1; i < 100; ++i) {
    float v = kll.Quantile(i / 100.0);
    double rank = double(std::upper_bound(sorted.begin(), sorted.end(), v) - sorted.begin()) / sorted.size();
    worst = std::max(worst, std::abs(rank - i / 100.0));
  }
  float sink = 0;
  double q = MedianRate(o.repeats, 10000, [&] {
    for (int i = 0; i < 10000; ++i) sink += kll.Quantile((i % 100) / 100.0);
  });
  double eq = MedianRate(o.repeats, 10000, [&] {
    for (int i = 0; i < 10000; ++i) sink += sorted[static_cast<size_t>((i % 100) / 100.0 * (sorted.size() - 1))];
  });
  g_sink = static_cast<uint64_t>(sink);
  rows->push_back({"kll", "k 200", "float", up, q, double(kll.MemoryBytes()), "max rank error",
                   worst, 50e6, 0, false});
  rows->push_back({"kll", "vector + sort", "float", eup, eq, double(sorted.capacity() * sizeof(float)),
                   "max rank error", 0, 0, 0, true});
}

}  // namespace

std::vector<SketchBenchRow> RunSketchBench(const SketchBenchOptions& o) {
  fmt::print(stderr, "generating {} keys of each kind...\n", o.n);
  Streams s = MakeStreams(o);
  std::vector<SketchBenchRow> rows;
  if (Wanted(o, "bloom")) BenchBloom(o, s, &rows);
  if (Wanted(o, "cuckoo")) BenchCuckoo(o, s, &rows);
  if (Wanted(o, "hll")) BenchHll(o, s, &rows);
  if (Wanted(o, "count-min")) BenchCountMin(o, s, &rows);
  if (Wanted(o, "top-k")) BenchTopK(o, s, &rows);
  if (Wanted(o, "kll")) BenchKll(o, s, &rows);
  return rows;
}

std::string FormatSketchBench(const std::vector<SketchBenchRow>& rows) {
  std::string out = fmt::format("{:<10} {:<6} {:<32} {:>10} {:>10} {:>11} {:>21} {:>7}\n", "sketch",
                                "keys", "params", "update/s", "query/s", "bytes", "accuracy",
                                "target");
  auto rate = [](double r) { return r > 0 ? fmt::format("{:.1f} M", r / 1e6) : std::string("-"); };
  for (const auto& r : rows) {
    std::string acc = r.accuracy_metric.empty() ? "" : fmt::format("{} {:.4g}", r.accuracy_metric, r.accuracy);
    std::string target = "";
    if (r.target_updates_per_sec > 0) {
      bool met = r.updates_per_sec >= r.target_updates_per_sec &&
                 r.queries_per_sec >= r.target_queries_per_sec;
      target = met ? "met" : "MISSED";
    }
    out += fmt::format("{:<10} {:<6} {:<32} {:>10} {:>10} {:>11.0f} {:>21} {:>7}\n",
                       r.exact ? "  exact" : r.sketch, r.keys, r.params, rate(r.updates_per_sec),
                       rate(r.queries_per_sec), r.bytes, acc, target);
  }
  out += "\nquery/s: Contains of absent keys (filters), Estimate() (hll), point Estimate (count-min),\n"
         "Top(100) (top-k), Quantile (kll). Targets: update/s per the project's speed goals.\n";
  // Ratios of each sketch's row to its exact baseline on the same keys.
  out += "\nsketch vs exact baseline on the same stream: update speed ratio, memory ratio\n";
  for (const auto& e : rows) {
    if (!e.exact) continue;
    for (const auto& r : rows) {
      if (r.sketch == e.sketch && !r.exact && r.keys == e.keys) {
        out += fmt::format("  {:<10} {:>6.1f}x faster, {:>8.1f}x less memory\n", r.sketch,
                           r.updates_per_sec / e.updates_per_sec, e.bytes / r.bytes);
        break;
      }
    }
  }
  return out;
}

nlohmann::json SketchBenchToJson(const SketchBenchOptions& o, const std::vector<SketchBenchRow>& rows) {
  nlohmann::json j;
  j["benchmark"] = "sketch";
  j["n"] = o.n;
  j["repeats"] = o.repeats;
  j["seed"] = o.seed;
  j["rows"] = nlohmann::json::array();
  for (const auto& r : rows) {
    j["rows"].push_back({{"sketch", r.sketch}, {"params", r.params}, {"keys", r.keys},
                         {"exact_baseline", r.exact}, {"updates_per_sec", r.updates_per_sec},
                         {"queries_per_sec", r.queries_per_sec}, {"bytes", r.bytes},
                         {"accuracy_metric", r.accuracy_metric}, {"accuracy", r.accuracy},
                         {"target_updates_per_sec", r.target_updates_per_sec},
                         {"target_queries_per_sec", r.target_queries_per_sec}});
  }
  return j;
}

}  // namespace cairn::bench
