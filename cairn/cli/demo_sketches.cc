// `cairn demo sketches`: sketches on real sensor data (NAB machine temperature)
// and on a generated 10 M-event stream, each answer printed beside the exact
// one with the memory both needed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "cairn/base/random.h"
#include "cairn/cli/demo_sketches.h"
#include "cairn/cli/format.h"
#include "cairn/cli/input.h"
#include "cairn/sketch/bloom_filter.h"
#include "cairn/sketch/count_min.h"
#include "cairn/sketch/hyperloglog.h"
#include "cairn/sketch/kll.h"
#include "cairn/sketch/top_k.h"

namespace cairn::cli {
namespace {

constexpr const char* kNabFile = "nab/machine_temperature_system_failure.csv";

template <typename Map>
size_t HashTableBytes(const Map& m) {
  // Swiss tables hold one control byte per slot besides the slot itself.
  return m.capacity() * (sizeof(typename Map::slot_type) + 1);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void Header(const std::string& title) {
  fmt::print("\n{}\n{}\n", title, std::string(title.size(), '-'));
}

// Part 1: quantiles of a real industrial sensor series.
int NabQuantiles(const std::string& data_dir) {
  const std::string path = (std::filesystem::path(data_dir) / kNabFile).string();
  FieldReaderOptions opt;
  opt.path = path;
  opt.column = 2;
  opt.skip_header = true;
  opt.progress = false;
  auto reader = FieldReader::Open(opt);
  if (!reader.ok()) {
    fmt::print(stderr, "cairn demo: {}\n", std::string(reader.status().message()));
    return 1;
  }
  auto kll = sketch::KllSketch<double>::Create(200);
  std::vector<double> exact;
  std::string_view field;
  for (;;) {
    auto r = (*reader)->Next(&field);
    if (r == FieldReader::Result::kEnd) break;
    if (r != FieldReader::Result::kField) continue;
    auto v = ParseNumber(field);
    if (!v) continue;
    kll->Update(*v);
    exact.push_back(*v);
  }
  std::sort(exact.begin(), exact.end());
  Header(fmt::format("1. Machine temperature, {} real readings (NAB, 5-minute samples, Dec 2013 - Feb 2014)",
                     Thousands(exact.size())));
  fmt::print("{:>9} {:>12} {:>12} {:>12}\n", "quantile", "exact", "KLL k=200", "rank error");
  double worst = 0;
  for (double q : {0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999}) {
    double e = exact[std::min(exact.size() - 1, static_cast<size_t>(q * exact.size()))];
    double s = kll->Quantile(q);
    double true_rank = static_cast<double>(std::upper_bound(exact.begin(), exact.end(), s) - exact.begin()) / exact.size();
    double err = std::abs(true_rank - q);
    worst = std::max(worst, err);
    fmt::print("{:>9} {:>12.2f} {:>12.2f} {:>11.2f}%\n", fmt::format("p{}", q * 100), e, s, 100 * err);
  }
  fmt::print("memory: exact (all values, sorted) {}, KLL {} — worst rank error {:.2f}% (bound {:.2f}%)\n",
             HumanBytes(exact.size() * sizeof(double)), HumanBytes(kll->MemoryBytes()), 100 * worst,
             100 * sketch::KllSketch<double>::NormalizedRankError(200));
  return 0;
}

// Part 2: a generated stream of sensor events, summarised by every sketch at once.
int EventStream(const SketchesDemoOptions& o) {
  Header(fmt::format("2. A stream of {} events from up to {} sensors (Zipf 1.1 activity, lognormal latencies)",
                     Thousands(o.events), Thousands(o.sensors)));
  auto hll = sketch::HyperLogLog::Create(14);
  auto top = sketch::TopK<uint64_t>::Create(1000);
  auto cms = sketch::CountMinSketch::Create(0.0005, 0.01);
  auto kll = sketch::KllSketch<float>::Create(200);
  absl::flat_hash_map<uint64_t, uint64_t> exact_counts;
  std::vector<float> exact_latency;
  exact_latency.reserve(o.events);

  ZipfGenerator zipf(o.sensors, 1.1, o.seed);
  std::mt19937_64 rng(o.seed + 1);
  std::lognormal_distribution<float> latency(2.0f, 0.6f);
  // Sensor ranks are scrambled into ids so the busiest sensors are not 1, 2, 3.
  auto sensor_id = [](uint64_t rank) { return 100000 + (rank * 0x9E3779B97F4A7C15ULL) % 900000007ULL; };

  const bool show_progress = isatty(STDERR_FILENO);
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < o.events; ++i) {
    uint64_t id = sensor_id(zipf.Next());
    float ms = latency(rng);
    hll->Add(id);
    top->Add(id);
    cms->Add(id);
    kll->Update(ms);
    exact_counts[id]++;
    exact_latency.push_back(ms);
    if (show_progress && (i & 0xfffff) == 0 && i) {
      fmt::print(stderr, "\r  generating: {:3.0f}%", 100.0 * i / o.events);
    }
  }
  if (show_progress) fmt::print(stderr, "\r{:40}\r", "");
  const double secs = Seconds(t0);

  // Distinct sensors.
  fmt::print("\n{:<28} {:>16} {:>16} {:>10} {:>12} {:>12}\n", "question", "exact", "sketch", "error",
             "exact mem", "sketch mem");
  const double distinct = static_cast<double>(exact_counts.size());
  fmt::print("{:<28} {:>16} {:>16} {:>9.2f}% {:>12} {:>12}\n", "distinct sensors (HLL)",
             Thousands(exact_counts.size()), Thousands(std::llround(hll->Estimate())),
             100 * std::abs(hll->Estimate() - distinct) / distinct,
             HumanBytes(HashTableBytes(exact_counts)), HumanBytes(hll->MemoryBytes()));

  // Quantiles of latency.
  std::sort(exact_latency.begin(), exact_latency.end());
  for (double q : {0.5, 0.99, 0.999}) {
    float e = exact_latency[static_cast<size_t>(q * (exact_latency.size() - 1))];
    float s = kll->Quantile(q);
    double rank = static_cast<double>(std::upper_bound(exact_latency.begin(), exact_latency.end(), s) -
                                      exact_latency.begin()) / exact_latency.size();
    fmt::print("{:<28} {:>14.2f}ms {:>14.2f}ms {:>10} {:>12} {:>12}\n",
               fmt::format("latency p{} (KLL)", q * 100), e, s,
               fmt::format("rank {:.2f}%", 100 * std::abs(rank - q)),
               HumanBytes(exact_latency.size() * sizeof(float)), HumanBytes(kll->MemoryBytes()));
  }

  // Point frequency queries (Count-Min) over every sensor seen.
  const double bound = cms->epsilon() * static_cast<double>(o.events);
  uint64_t over = 0, within = 0;
  for (const auto& [id, n] : exact_counts) {
    uint64_t extra = cms->Estimate(id) - n;
    over += extra;
    within += extra <= bound;
  }
  fmt::print("{:<28} {:>16} {:>16} {:>10} {:>12} {:>12}\n", "events per sensor (CMS)", "exact",
             fmt::format("avg +{:.1f}", static_cast<double>(over) / exact_counts.size()),
             fmt::format("{:.1f}% ok", 100.0 * within / exact_counts.size()),
             HumanBytes(HashTableBytes(exact_counts)), HumanBytes(cms->MemoryBytes()));

  // Membership: has this sensor ever reported?
  auto bloom = sketch::BloomFilter::Create(exact_counts.size(), 0.01);
  for (const auto& [id, n] : exact_counts) bloom->Insert(id);
  uint64_t fp = 0, probes = 1'000'000;
  for (uint64_t i = 0; i < probes; ++i) fp += bloom->Contains(uint64_t{5'000'000'000ULL + i});
  absl::flat_hash_set<uint64_t> exact_set;
  exact_set.reserve(exact_counts.size());
  for (const auto& [id, n] : exact_counts) exact_set.insert(id);
  fmt::print("{:<28} {:>16} {:>16} {:>10} {:>12} {:>12}\n", "seen? absent ids (Bloom)",
             "0 false", fmt::format("{} false", Thousands(fp)),
             fmt::format("fp {:.2f}%", 100.0 * fp / probes), HumanBytes(HashTableBytes(exact_set)),
             HumanBytes(bloom->MemoryBytes()));

  fmt::print("error: HLL relative error; KLL rank error; CMS share of sensors within the\n"
             "epsilon*N bound ({:.0f} events); Bloom false positives among {} absent ids\n",
             bound, Thousands(probes));

  // Heavy hitters.
  std::vector<std::pair<uint64_t, uint64_t>> exact_top(exact_counts.begin(), exact_counts.end());
  std::partial_sort(exact_top.begin(), exact_top.begin() + 10, exact_top.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second; });
  auto items = top->Top(10);
  fmt::print("\nbusiest sensors: exact count vs top-k sketch (capacity 1000, {}; exact needs {})\n",
             HumanBytes(top->MemoryBytes()), HumanBytes(HashTableBytes(exact_counts)));
  fmt::print("{:>4} {:>12} {:>12} | {:>12} {:>12} {:>10}\n", "rank", "sensor", "exact", "sensor",
             "sketch", "± error");
  int found = 0;
  for (size_t i = 0; i < 10 && i < items.size(); ++i) {
    for (size_t j = 0; j < 10; ++j) found += items[i].key == exact_top[j].first;
    fmt::print("{:>4} {:>12} {:>12} | {:>12} {:>12} {:>10}\n", i + 1, exact_top[i].first,
               Thousands(exact_top[i].second), items[i].key, Thousands(items[i].count),
               Thousands(items[i].error));
  }
  fmt::print("top-10 recall {}/10\n", found);
  fmt::print("\n{} events through 4 sketches and the exact baseline in {:.2f} s\n", Thousands(o.events), secs);
  return 0;
}

}  // namespace

int RunSketchesDemo(const SketchesDemoOptions& o) {
  std::string dir = FindDataDir(o.data_dir, kNabFile);
  if (dir.empty()) {
    fmt::print(stderr,
               "cairn demo: cannot find the bundled data ({}); run from the repository root or "
               "pass --data DIR\n", kNabFile);
    return 1;
  }
  fmt::print("cairn demo sketches — probabilistic sketches beside exact answers\n");
  if (int rc = NabQuantiles(dir); rc != 0) return rc;
  return EventStream(o);
}

std::string FindDataDir(const std::string& flag, const std::string& probe) {
  std::vector<std::string> candidates;
  if (!flag.empty()) candidates.push_back(flag);
  if (const char* env = std::getenv("CAIRN_DATA_DIR")) candidates.push_back(env);
  candidates.push_back("data");
  candidates.push_back(CAIRN_DATA_DIR);
  for (const auto& c : candidates) {
    if (std::filesystem::exists(std::filesystem::path(c) / probe)) return c;
  }
  return "";
}

}  // namespace cairn::cli
