#include "cairn/pipeline/aggregate.h"

#include <algorithm>
#include <cmath>

#include "fmt/format.h"

namespace cairn::pipeline {

using stream::Value;

void RowAcc::Encode(ByteWriter& w) const {
  w.Varint(cells.size());
  for (const AggCell& c : cells) {
    w.I64(c.count);
    w.F64(c.sum);
    w.F64(c.mean);
    w.F64(c.m2);
    stream::Serde<Value>::Write(w, c.value);
    w.String(c.hll ? c.hll->Serialize() : std::string());
    w.String(c.kll ? c.kll->Serialize() : std::string());
  }
}

bool RowAcc::Decode(ByteReader& r, RowAcc* out) {
  uint64_t n = r.Varint();
  if (!r.ok() || n > r.remaining()) return false;
  out->cells.assign(n, AggCell{});
  for (AggCell& c : out->cells) {
    c.count = r.I64();
    c.sum = r.F64();
    c.mean = r.F64();
    c.m2 = r.F64();
    if (!stream::Serde<Value>::Read(r, &c.value)) return false;
    std::string_view hll = r.String();
    std::string_view kll = r.String();
    if (!r.ok()) return false;
    if (!hll.empty()) {
      auto h = sketch::HyperLogLog::Deserialize(hll);
      if (!h.ok()) return false;
      c.hll = std::make_shared<sketch::HyperLogLog>(std::move(*h));
    }
    if (!kll.empty()) {
      auto k = sketch::KllSketch<double>::Deserialize(kll);
      if (!k.ok()) return false;
      c.kll = std::make_shared<sketch::KllSketch<double>>(std::move(*k));
    }
  }
  return true;
}

absl::StatusOr<RowAggregate> RowAggregate::Parse(const Config& spec) {
  RowAggregate agg;
  for (const std::string& name : spec.Keys()) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, spec.Get<std::string>(name));
    // fn(args): a lower-case name, then everything up to the last ')'.
    size_t open = text.find('(');
    size_t close = text.rfind(')');
    std::string fn = open == std::string::npos ? "" : text.substr(0, open);
    while (!fn.empty() && fn.back() == ' ') fn.pop_back();
    while (!fn.empty() && fn.front() == ' ') fn.erase(fn.begin());
    bool name_ok = !fn.empty() && std::all_of(fn.begin(), fn.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
    });
    if (!name_ok || close == std::string::npos || close < open ||
        text.find_first_not_of(" \t", close + 1) != std::string::npos)
      return absl::InvalidArgumentError(fmt::format("{}: expected fn(field), e.g. avg(temperature), got \"{}\"",
                                                    spec.Describe(name), text));
    std::string args = text.substr(open + 1, close - open - 1);
    Output out;
    out.name = name;
    auto arg_expr = [&](std::string_view a) -> absl::Status {
      auto e = Expr::Parse(a);
      if (!e.ok())
        return absl::InvalidArgumentError(fmt::format("{}: {}", spec.Describe(name), std::string(e.status().message())));
      out.arg = std::move(*e);
      return absl::OkStatus();
    };
    bool needs_arg = true;
    if (fn == "count") {
      out.fn = Fn::kCount;
      if (args.find_first_not_of(" \t") == std::string::npos || args == "*") {
        out.fn = Fn::kCountRows;
        needs_arg = false;
      }
    } else if (fn == "sum") {
      out.fn = Fn::kSum;
    } else if (fn == "avg" || fn == "mean") {
      out.fn = Fn::kAvg;
    } else if (fn == "min") {
      out.fn = Fn::kMin;
    } else if (fn == "max") {
      out.fn = Fn::kMax;
    } else if (fn == "stddev") {
      out.fn = Fn::kStddev;
    } else if (fn == "first") {
      out.fn = Fn::kFirst;
    } else if (fn == "last") {
      out.fn = Fn::kLast;
    } else if (fn == "distinct") {
      out.fn = Fn::kDistinct;
    } else if (fn == "p50" || fn == "p90" || fn == "p95" || fn == "p99" || fn == "median") {
      out.fn = Fn::kQuantile;
      out.q = fn == "median" ? 0.5 : std::stod(fn.substr(1)) / 100.0;
    } else if (fn == "quantile") {
      out.fn = Fn::kQuantile;
      size_t comma = args.rfind(',');
      if (comma == std::string::npos)
        return absl::InvalidArgumentError(
            fmt::format("{}: quantile needs a field and a rank, e.g. quantile(latency, 0.99)", spec.Describe(name)));
      char* end = nullptr;
      std::string qs = args.substr(comma + 1);
      out.q = std::strtod(qs.c_str(), &end);
      if (end == qs.c_str() || !(out.q >= 0 && out.q <= 1))
        return absl::InvalidArgumentError(
            fmt::format("{}: the rank of quantile must be a number in [0, 1], got \"{}\"", spec.Describe(name), qs));
      args = args.substr(0, comma);
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "{}: unknown aggregate '{}' (use count, sum, avg, min, max, stddev, first, last, distinct, p50, p90, "
          "p95, p99, quantile)",
          spec.Describe(name), fn));
    }
    if (needs_arg) {
      if (args.find_first_not_of(" \t") == std::string::npos)
        return absl::InvalidArgumentError(fmt::format("{}: {}() needs a field", spec.Describe(name), fn));
      CAIRN_RETURN_IF_ERROR(arg_expr(args));
    }
    agg.outputs_.push_back(std::move(out));
  }
  if (agg.outputs_.empty())
    return absl::InvalidArgumentError(fmt::format("{}: no aggregates given", spec.Describe("")));
  return agg;
}

RowAcc RowAggregate::Create() const {
  RowAcc acc;
  acc.cells.resize(outputs_.size());
  return acc;
}

void RowAggregate::Add(RowAcc& acc, const stream::Row& row) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const Output& o = outputs_[i];
    AggCell& c = acc.cells[i];
    if (o.fn == Fn::kCountRows) {
      ++c.count;
      continue;
    }
    Value v = o.arg->Eval(row);
    if (v.index() == 0) continue;
    switch (o.fn) {
      case Fn::kCount:
        ++c.count;
        break;
      case Fn::kFirst:
        if (c.count++ == 0) c.value = v;
        break;
      case Fn::kLast:
        ++c.count;
        c.value = v;
        break;
      case Fn::kDistinct:
        if (!c.hll) c.hll = std::make_shared<sketch::HyperLogLog>(*sketch::HyperLogLog::Create(12));
        c.hll->Add(stream::ValueToString(v));
        ++c.count;
        break;
      case Fn::kMin:
      case Fn::kMax: {
        auto x = stream::ValueToDouble(v);
        if (!x) break;
        double cur = c.count ? std::get<double>(c.value) : *x;
        c.value = o.fn == Fn::kMin ? std::min(cur, *x) : std::max(cur, *x);
        ++c.count;
        break;
      }
      default: {
        auto x = stream::ValueToDouble(v);
        if (!x || std::isnan(*x)) break;
        ++c.count;
        c.sum += *x;
        double delta = *x - c.mean;
        c.mean += delta / static_cast<double>(c.count);
        c.m2 += delta * (*x - c.mean);
        if (o.fn == Fn::kQuantile) {
          if (!c.kll) c.kll = std::make_shared<sketch::KllSketch<double>>(*sketch::KllSketch<double>::Create());
          c.kll->Update(*x);
        }
      }
    }
  }
}

void RowAggregate::Merge(RowAcc& into, const RowAcc& other) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const Output& o = outputs_[i];
    AggCell& a = into.cells[i];
    const AggCell& b = other.cells[i];
    if (b.count == 0) continue;
    if (a.count == 0) {
      a = b;
      if (b.hll) a.hll = std::make_shared<sketch::HyperLogLog>(*b.hll);
      if (b.kll) a.kll = std::make_shared<sketch::KllSketch<double>>(*b.kll);
      continue;
    }
    switch (o.fn) {
      case Fn::kFirst:
        break;
      case Fn::kLast:
        a.value = b.value;
        break;
      case Fn::kMin:
        a.value = std::min(std::get<double>(a.value), std::get<double>(b.value));
        break;
      case Fn::kMax:
        a.value = std::max(std::get<double>(a.value), std::get<double>(b.value));
        break;
      case Fn::kDistinct:
        if (b.hll) (void)a.hll->Merge(*b.hll);
        break;
      default:
        break;
    }
    // Chan et al.'s parallel update of the mean and the sum of squares.
    double n = static_cast<double>(a.count + b.count);
    double delta = b.mean - a.mean;
    a.m2 += b.m2 + delta * delta * static_cast<double>(a.count) * static_cast<double>(b.count) / n;
    a.mean += delta * static_cast<double>(b.count) / n;
    a.sum += b.sum;
    a.count += b.count;
    if (o.fn == Fn::kQuantile && b.kll) (void)a.kll->Merge(*b.kll);
  }
}

void RowAggregate::Result(const RowAcc& acc, stream::Row& out) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const Output& o = outputs_[i];
    const AggCell& c = acc.cells[i];
    Value v;
    switch (o.fn) {
      case Fn::kCountRows:
      case Fn::kCount:
        v = c.count;
        break;
      case Fn::kSum:
        if (c.count) v = c.sum;
        break;
      case Fn::kAvg:
        if (c.count) v = c.mean;
        break;
      case Fn::kStddev:
        if (c.count) v = std::sqrt(c.m2 / static_cast<double>(c.count));
        break;
      case Fn::kMin:
      case Fn::kMax:
      case Fn::kFirst:
      case Fn::kLast:
        v = c.value;
        break;
      case Fn::kDistinct:
        v = c.hll ? static_cast<int64_t>(std::llround(c.hll->Estimate())) : int64_t{0};
        break;
      case Fn::kQuantile:
        if (c.kll && c.kll->n() > 0) v = c.kll->Quantile(o.q);
        break;
    }
    out.Set(o.name, std::move(v));
  }
}

}  // namespace cairn::pipeline
