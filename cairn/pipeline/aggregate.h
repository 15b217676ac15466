// Aggregations of Rows for pipeline files: `name: fn(expr)` pairs such as
//   count: count()            avg_temp: avg(temperature)     peak: max(temperature)
//   machines: distinct(machine)   p99: p99(latency_ms)        q: quantile(latency_ms, 0.999)
// Functions: count() (rows), count(x) (non-null values), sum, avg, min, max,
// stddev (population, Welford), first, last, distinct (HyperLogLog, ~1.6 %
// error), quantile(x, q) and p50/p90/p95/p99 (KLL sketch, ~1.3 % rank error).
// Non-numeric values are ignored by the numeric functions.
//
// Thread-safety: RowAggregate is immutable after Parse; accumulators are values.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/base/config.h"
#include "cairn/pipeline/expr.h"
#include "cairn/sketch/hyperloglog.h"
#include "cairn/sketch/kll.h"
#include "cairn/stream/record.h"

namespace cairn::pipeline {

// The running state of one aggregate output.
struct AggCell {
  int64_t count = 0;
  double sum = 0, mean = 0, m2 = 0;
  stream::Value value;  // min, max, first, last
  std::shared_ptr<sketch::HyperLogLog> hll;
  std::shared_ptr<sketch::KllSketch<double>> kll;
};

// The accumulator of a whole aggregate (one cell per output).
struct RowAcc {
  std::vector<AggCell> cells;
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, RowAcc* out);
};

class RowAggregate {
 public:
  // `spec` maps output names to "fn(args)" strings; errors name the key and line.
  static absl::StatusOr<RowAggregate> Parse(const Config& spec);

  RowAcc Create() const;
  void Add(RowAcc& acc, const stream::Row& row) const;
  void Merge(RowAcc& into, const RowAcc& other) const;
  // Appends one field per output to `out`.
  void Result(const RowAcc& acc, stream::Row& out) const;

 private:
  enum class Fn { kCountRows, kCount, kSum, kAvg, kMin, kMax, kStddev, kFirst, kLast, kDistinct, kQuantile };
  struct Output {
    std::string name;
    Fn fn;
    std::optional<Expr> arg;
    double q = 0.5;
  };
  std::vector<Output> outputs_;
};

}  // namespace cairn::pipeline
