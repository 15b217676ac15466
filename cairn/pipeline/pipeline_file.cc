#include "cairn/pipeline/pipeline_file.h"

#include <charconv>

#include "cairn/pipeline/aggregate.h"
#include "cairn/pipeline/connectors.h"
#include "cairn/pipeline/detect_step.h"
#include "cairn/pipeline/expr.h"
#include "cairn/stream/file_connector.h"
#include "fmt/format.h"

namespace cairn::pipeline {

using stream::Row;
using stream::Stream;
using stream::Value;

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  double n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, n);
  if (i == 0 || ec != std::errc() || p != text.data() + i)
    return absl::InvalidArgumentError(fmt::format("\"{}\" is not a duration (e.g. 250ms, 10s, 5m, 2h, 1d)", text));
  std::string_view unit = text.substr(i);
  double scale = 0;
  if (unit.empty() || unit == "ms") scale = 1;
  else if (unit == "s") scale = 1e3;
  else if (unit == "m" || unit == "min") scale = 60e3;
  else if (unit == "h") scale = 3600e3;
  else if (unit == "d") scale = 86400e3;
  else
    return absl::InvalidArgumentError(
        fmt::format("\"{}\": unknown unit '{}' (use ms, s, m, h or d)", text, unit));
  return static_cast<int64_t>(n * scale + 0.5);
}

namespace {

absl::StatusOr<int64_t> DurationAt(const Config& c, std::string_view key, int64_t fallback) {
  if (!c.Has(key)) return fallback;
  CAIRN_ASSIGN_OR_RETURN(std::string text, c.Get<std::string>(key));
  auto ms = ParseDurationMs(text);
  if (!ms.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe(key), std::string(ms.status().message())));
  return *ms;
}

// A string or a list of strings.
absl::StatusOr<std::vector<std::string>> Names(const Config& c, std::string_view key) {
  auto list = c.Get<std::vector<std::string>>(key);
  if (list.ok()) return list;
  CAIRN_ASSIGN_OR_RETURN(std::string one, c.Get<std::string>(key));
  return std::vector<std::string>{one};
}

absl::StatusOr<Expr> ExprAt(const Config& c, std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, c.Get<std::string>(key));
  auto e = Expr::Parse(text);
  if (!e.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe(key), std::string(e.status().message())));
  return e;
}

}  // namespace

class Compiler {
 public:
  Compiler(const Config& root, const RunOverrides& overrides) : root_(root), overrides_(overrides) {}

  absl::StatusOr<std::unique_ptr<CompiledPipeline>> Compile() {
    CAIRN_RETURN_IF_ERROR(root_.CheckKnownKeys({"name", "parallelism", "batch_size", "queue_batches", "checkpoint",
                                                 "state", "dead_letter", "source", "steps", "sink", "late"}));
    out_ = std::make_unique<CompiledPipeline>();
    stream::PipelineOptions o;
    CAIRN_ASSIGN_OR_RETURN(o.name, root_.GetOr<std::string>("name", "pipeline"));
    CAIRN_ASSIGN_OR_RETURN(o.default_parallelism, root_.GetOr<int>("parallelism", 1));
    if (overrides_.parallelism) o.default_parallelism = *overrides_.parallelism;
    if (o.default_parallelism < 1 || o.default_parallelism > 256)
      return absl::InvalidArgumentError(fmt::format("{}: must be 1..256", root_.Describe("parallelism")));
    CAIRN_ASSIGN_OR_RETURN(int batch, root_.GetOr<int>("batch_size", 1024));
    CAIRN_ASSIGN_OR_RETURN(int queue, root_.GetOr<int>("queue_batches", 16));
    if (batch < 1 || queue < 1)
      return absl::InvalidArgumentError(fmt::format("{}: batch_size and queue_batches must be positive", root_.source()));
    o.batch_size = static_cast<size_t>(batch);
    o.queue_batches = static_cast<size_t>(queue);
    if (root_.Has("checkpoint")) {
      CAIRN_ASSIGN_OR_RETURN(Config c, root_.Child("checkpoint"));
      CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({"dir", "interval", "keep"}));
      CAIRN_ASSIGN_OR_RETURN(o.checkpoint_dir, c.Get<std::string>("dir"));
      CAIRN_ASSIGN_OR_RETURN(int64_t interval, DurationAt(c, "interval", 1000));
      o.checkpoint_interval = stream::Millis(interval);
      CAIRN_ASSIGN_OR_RETURN(o.checkpoints_to_keep, c.GetOr<int>("keep", 3));
      if (interval <= 0 || o.checkpoints_to_keep < 1)
        return absl::InvalidArgumentError(fmt::format("{}: interval and keep must be positive", c.Describe("")));
    }
    if (overrides_.checkpoint_dir) {
      o.checkpoint_dir = *overrides_.checkpoint_dir;
      if (o.checkpoint_interval.count() == 0) o.checkpoint_interval = stream::Millis(1000);
    }
    if (overrides_.checkpoint_interval_ms) o.checkpoint_interval = stream::Millis(*overrides_.checkpoint_interval_ms);
    o.restore = overrides_.restore;
    if (root_.Has("state")) {
      CAIRN_ASSIGN_OR_RETURN(Config c, root_.Child("state"));
      CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({"backend", "dir"}));
      CAIRN_ASSIGN_OR_RETURN(std::string backend, c.GetOr<std::string>("backend", "memory"));
      if (backend == "rocksdb") {
        o.state.kind = stream::StateBackendKind::kRocksDb;
        CAIRN_ASSIGN_OR_RETURN(o.state.rocksdb_dir, c.Get<std::string>("dir"));
      } else if (backend != "memory") {
        return absl::InvalidArgumentError(
            fmt::format("{}: unknown state backend \"{}\" (memory or rocksdb)", c.Describe("backend"), backend));
      }
    }
    CAIRN_ASSIGN_OR_RETURN(std::string dead_letter, root_.GetOr<std::string>("dead_letter", ""));
    CAIRN_ASSIGN_OR_RETURN(auto dl, stream::DeadLetterFile::Open(dead_letter));
    out_->dead_letter_ = std::move(dl);
    o.dead_letter = out_->dead_letter_.get();
    out_->pipeline_ = std::make_unique<stream::Pipeline>(o);
    p_ = out_->pipeline_.get();

    CAIRN_ASSIGN_OR_RETURN(Config source, root_.Child("source"));
    CAIRN_ASSIGN_OR_RETURN(Stream<Row> s, AddSource(source));
    if (root_.Has("steps")) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<Config> steps, root_.Items("steps"));
      for (size_t i = 0; i < steps.size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(s, AddStep(steps[i], s, static_cast<int>(i)));
      }
    }
    if (pending_key_by_)
      return absl::InvalidArgumentError(fmt::format(
          "{}: a key_by step alone keys the step after it, which must be detect, window or aggregate; there is none",
          pending_key_by_->where));
    CAIRN_ASSIGN_OR_RETURN(Config sink, root_.Child("sink"));
    CAIRN_RETURN_IF_ERROR(AddSink(sink, s, "sink"));
    if (root_.Has("late")) {
      if (!late_)
        return absl::InvalidArgumentError(
            fmt::format("{}: there is no window step whose late records it could take", root_.Describe("late")));
      CAIRN_ASSIGN_OR_RETURN(Config late, root_.Child("late"));
      CAIRN_RETURN_IF_ERROR(AddSink(late, *late_, "late"));
    }
    return std::move(out_);
  }

 private:
  // A step's `name` and `parallelism`; CheckOpKeys has validated both first.
  stream::Op OpFor(const Config& c, const std::string& fallback) {
    return stream::Op(c.GetOr<std::string>("name", fallback).value_or(fallback),
                      c.GetOr<int>("parallelism", 0).value_or(0));
  }
  absl::Status CheckOpKeys(const Config& c) {
    CAIRN_ASSIGN_OR_RETURN(int par, c.GetOr<int>("parallelism", 1));
    if (par < 1 || par > 256) return absl::InvalidArgumentError(fmt::format("{}: must be 1..256", c.Describe("parallelism")));
    return c.GetOr<std::string>("name", "").status();
  }

  absl::StatusOr<Stream<Row>> AddSource(const Config& c) {
    CAIRN_RETURN_IF_ERROR(CheckOpKeys(c));
    CAIRN_ASSIGN_OR_RETURN(SourceSpec spec, MakeSource(c));
    if (overrides_.source) spec.factory = overrides_.source(std::move(spec.factory));
    stream::WatermarkStrategy<Row> wm;
    CAIRN_ASSIGN_OR_RETURN(int64_t ooo, DurationAt(c, "max_out_of_orderness", 0));
    CAIRN_ASSIGN_OR_RETURN(int64_t idle, DurationAt(c, "idle_timeout", 0));
    CAIRN_ASSIGN_OR_RETURN(double rate, c.GetOr<double>("rate", 0));
    if (rate < 0) return absl::InvalidArgumentError(fmt::format("{}: must not be negative", c.Describe("rate")));
    wm.max_out_of_orderness = stream::Millis(ooo);
    wm.idle_timeout = stream::Millis(idle);
    wm.max_records_per_second = rate;
    // An HTTP source listens on /v1/pipelines/<its name>/events: the pipeline's name by default.
    auto type = c.GetOr<std::string>("type", "");
    stream::Op op = OpFor(c, type.ok() && *type == "http" ? p_->options().name : "source");
    out_->summary_.push_back(
        fmt::format("source {}{}", spec.description, overrides_.source ? " (wrapped or replaced by the program)" : ""));
    return p_->AddSource<Row>(op, spec.factory, wm);
  }

  absl::Status AddSink(const Config& c, Stream<Row> s, const std::string& what) {
    CAIRN_RETURN_IF_ERROR(CheckOpKeys(c));
    CAIRN_ASSIGN_OR_RETURN(SinkSpec spec, MakeSink(c));
    if (what == "sink" && overrides_.sink) spec.factory = overrides_.sink(std::move(spec.factory));
    s.AddSink(OpFor(c, what), spec.factory);
    const bool replaced = what == "sink" && overrides_.sink;
    out_->summary_.push_back(
        fmt::format("{} {}{}", what, spec.description, replaced ? " (wrapped or replaced by the program)" : ""));
    return absl::OkStatus();
  }

  absl::StatusOr<Stream<Row>> AddStep(const Config& c, Stream<Row> s, int index) {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({"name", "parallelism", "filter", "set", "drop", "keep", "rename", "key_by",
                                            "window", "aggregate", "detect"}));
    CAIRN_RETURN_IF_ERROR(CheckOpKeys(c));
    int kinds = c.Has("filter") + c.Has("set") + c.Has("drop") + c.Has("keep") + c.Has("rename") +
                (c.Has("key_by") || c.Has("window") || c.Has("aggregate") || c.Has("detect"));
    if (kinds != 1)
      return absl::InvalidArgumentError(fmt::format(
          "{}: a step does exactly one of filter, set, drop, keep, rename, or key_by/window/aggregate/detect",
          c.Describe("")));
    std::string fallback = fmt::format("step{}", index + 1);
    const bool keyed_step = c.Has("window") || c.Has("aggregate") || c.Has("detect");
    std::optional<std::vector<std::string>> keys;  // from a key_by step just before
    if (pending_key_by_) {
      if (!keyed_step || c.Has("key_by"))
        return absl::InvalidArgumentError(fmt::format(
            "{}: a key_by step alone keys the step after it, which must be detect, window or aggregate (without a "
            "key_by of its own)",
            pending_key_by_->where));
      keys = std::move(pending_key_by_->keys);
      pending_key_by_.reset();
    }
    if (c.Has("key_by") && !keyed_step) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, Names(c, "key_by"));
      if (c.Has("name") || c.Has("parallelism"))
        return absl::InvalidArgumentError(fmt::format(
            "{}: a key_by step alone only names the key; set name and parallelism on the step after it",
            c.Describe("")));
      pending_key_by_ = PendingKeyBy{std::move(names), c.Describe("key_by")};
      return s;
    }
    if (c.Has("detect")) return AddDetect(c, s, fallback, std::move(keys));
    if (c.Has("filter")) {
      CAIRN_ASSIGN_OR_RETURN(Expr e, ExprAt(c, "filter"));
      return s.Filter(OpFor(c, fallback + ":filter"), [e](const Row& r) { return e.Test(r); });
    }
    if (c.Has("set")) {
      CAIRN_ASSIGN_OR_RETURN(Config set, c.Child("set"));
      std::vector<std::pair<std::string, Expr>> fields;
      for (const std::string& k : set.Keys()) {
        CAIRN_ASSIGN_OR_RETURN(Expr e, ExprAt(set, k));
        fields.emplace_back(k, std::move(e));
      }
      return s.Map(OpFor(c, fallback + ":set"), [fields](const Row& in) {
        Row r = in;
        for (auto& [name, e] : fields) r.Set(name, e.Eval(r));
        return r;
      });
    }
    if (c.Has("drop") || c.Has("keep")) {
      bool keep = c.Has("keep");
      CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, c.Get<std::vector<std::string>>(keep ? "keep" : "drop"));
      return s.Map(OpFor(c, fallback + (keep ? ":keep" : ":drop")), [names, keep](const Row& in) {
        Row r;
        for (const stream::Field& f : in.fields()) {
          bool listed = std::find(names.begin(), names.end(), f.name) != names.end();
          if (listed == keep) r.Set(f.name, f.value);
        }
        return r;
      });
    }
    if (c.Has("rename")) {
      CAIRN_ASSIGN_OR_RETURN(Config ren, c.Child("rename"));
      std::vector<std::pair<std::string, std::string>> pairs;
      for (const std::string& k : ren.Keys()) {
        CAIRN_ASSIGN_OR_RETURN(std::string to, ren.Get<std::string>(k));
        pairs.emplace_back(k, to);
      }
      return s.Map(OpFor(c, fallback + ":rename"), [pairs](const Row& in) {
        Row r = in;
        for (auto& [from, to] : pairs)
          for (stream::Field& f : r.mutable_fields())
            if (f.name == from) f.name = to;
        return r;
      });
    }
    return AddKeyed(c, s, fallback, std::move(keys));
  }

  static std::function<Row(const Row&)> KeyFunction(std::vector<std::string> keys) {
    return [keys = std::move(keys)](const Row& r) {
      Row k;
      for (const std::string& name : keys) {
        const Value* v = r.Get(name);
        k.Set(name, v ? *v : Value{});
      }
      return k;
    };
  }

  absl::StatusOr<Stream<Row>> AddDetect(const Config& c, Stream<Row> s, const std::string& fallback,
                                        std::optional<std::vector<std::string>> pending) {
    if (c.Has("window") || c.Has("aggregate"))
      return absl::InvalidArgumentError(
          fmt::format("{}: detect is a step of its own (not with window or aggregate)", c.Describe("detect")));
    std::vector<std::string> keys = pending.value_or(std::vector<std::string>{});
    if (c.Has("key_by")) {
      CAIRN_ASSIGN_OR_RETURN(keys, Names(c, "key_by"));
    }
    CAIRN_ASSIGN_OR_RETURN(Config d, c.Child("detect"));
    CAIRN_ASSIGN_OR_RETURN(RowDetector detector, MakeRowDetector(d, keys));
    stream::Op op = OpFor(c, fallback + ":detect");
    if (detector.stream_wide || keys.empty()) {
      // One state for the whole stream: one subtask sees every row.
      if (c.Has("parallelism") && op.parallelism != 1)
        return absl::InvalidArgumentError(fmt::format(
            "{}: a detector without key_by sees the whole stream and runs as one subtask", c.Describe("parallelism")));
      op.parallelism = 1;
    }
    return s.KeyBy(KeyFunction(keys)).Process<Row>(op, detector.factory);
  }

  absl::StatusOr<Stream<Row>> AddKeyed(const Config& c, Stream<Row> s, const std::string& fallback,
                                       std::optional<std::vector<std::string>> pending) {
    std::vector<std::string> keys = pending.value_or(std::vector<std::string>{});
    if (c.Has("key_by")) {
      CAIRN_ASSIGN_OR_RETURN(keys, Names(c, "key_by"));
    }
    if (!c.Has("aggregate"))
      return absl::InvalidArgumentError(
          fmt::format("{}: a window needs an `aggregate` in the same step", c.Describe("")));
    CAIRN_ASSIGN_OR_RETURN(Config agg_cfg, c.Child("aggregate"));
    CAIRN_ASSIGN_OR_RETURN(RowAggregate agg, RowAggregate::Parse(agg_cfg));
    auto keyed = s.KeyBy(KeyFunction(keys));
    if (!c.Has("window")) {
      // Rolling aggregate: an updated result row for every input row.
      class Rolling final : public stream::KeyedProcessFunction<Row, Row, Row> {
       public:
        explicit Rolling(RowAggregate agg) : agg_(std::move(agg)) {}
        void Open(stream::KeyedContext<Row, Row>& ctx) override {
          acc_ = ctx.state().GetValueState<RowAcc>("rolling");
        }
        void ProcessElement(const Row& row, stream::KeyedContext<Row, Row>& ctx) override {
          RowAcc acc = acc_->Value().value_or(agg_.Create());
          agg_.Add(acc, row);
          Row out = ctx.key();
          agg_.Result(acc, out);
          acc_->Update(std::move(acc));
          ctx.Emit(std::move(out));
        }

       private:
        RowAggregate agg_;
        stream::ValueState<RowAcc>* acc_ = nullptr;
      };
      return keyed.Process<Row>(OpFor(c, fallback + ":aggregate"),
                                [agg] { return std::make_unique<Rolling>(agg); });
    }
    CAIRN_ASSIGN_OR_RETURN(Config w, c.Child("window"));
    CAIRN_RETURN_IF_ERROR(w.CheckKnownKeys({"type", "size", "slide", "gap", "offset", "allowed_lateness"}));
    CAIRN_ASSIGN_OR_RETURN(std::string type, w.GetOr<std::string>("type", "tumbling"));
    stream::WindowSpec spec;
    if (type == "tumbling" || type == "sliding") {
      CAIRN_ASSIGN_OR_RETURN(int64_t size, DurationAt(w, "size", 0));
      if (!w.Has("size")) return absl::InvalidArgumentError(fmt::format("{}: a {} window needs `size`", w.Describe(""), type));
      int64_t slide = size;
      if (type == "sliding") {
        if (!w.Has("slide"))
          return absl::InvalidArgumentError(fmt::format("{}: a sliding window needs `slide`", w.Describe("")));
        CAIRN_ASSIGN_OR_RETURN(slide, DurationAt(w, "slide", size));
      }
      CAIRN_ASSIGN_OR_RETURN(int64_t offset, DurationAt(w, "offset", 0));
      if (size <= 0 || slide <= 0)
        return absl::InvalidArgumentError(fmt::format("{}: size and slide must be positive", w.Describe("")));
      spec = type == "tumbling" ? stream::Windows::Tumbling(stream::Millis(size), stream::Millis(offset))
                                : stream::Windows::Sliding(stream::Millis(size), stream::Millis(slide),
                                                           stream::Millis(offset));
    } else if (type == "session") {
      if (!w.Has("gap")) return absl::InvalidArgumentError(fmt::format("{}: a session window needs `gap`", w.Describe("")));
      CAIRN_ASSIGN_OR_RETURN(int64_t gap, DurationAt(w, "gap", 0));
      if (gap <= 0) return absl::InvalidArgumentError(fmt::format("{}: must be positive", w.Describe("gap")));
      spec = stream::Windows::Session(stream::Millis(gap));
    } else {
      return absl::InvalidArgumentError(
          fmt::format("{}: unknown window type \"{}\" (tumbling, sliding or session)", w.Describe("type"), type));
    }
    CAIRN_ASSIGN_OR_RETURN(int64_t lateness, DurationAt(w, "allowed_lateness", 0));
    stream::AggregateFunction<Row, RowAcc, RowAcc> fn;
    fn.create = [agg] { return agg.Create(); };
    fn.add = [agg](RowAcc& acc, const Row& r) { agg.Add(acc, r); };
    fn.result = [](const RowAcc& acc) { return acc; };
    fn.merge = [agg](RowAcc& a, const RowAcc& b) { agg.Merge(a, b); };
    auto out = keyed.Window(spec).AllowedLateness(stream::Millis(lateness)).Aggregate(OpFor(c, fallback + ":window"), fn);
    late_ = out.late;
    return out.results.Map(stream::Op(fallback + ":result", c.GetOr<int>("parallelism", 0).value_or(0)),
                           [agg](const stream::WindowResult<Row, RowAcc>& wr) {
                             Row r = wr.key;
                             r.Set("window_start", wr.start);
                             r.Set("window_end", wr.end);
                             agg.Result(wr.value, r);
                             return r;
                           });
  }

  Config root_;
  RunOverrides overrides_;
  std::unique_ptr<CompiledPipeline> out_;
  stream::Pipeline* p_ = nullptr;
  std::optional<Stream<Row>> late_;
  // A `key_by` step on its own: the keys of the next step.
  struct PendingKeyBy {
    std::vector<std::string> keys;
    std::string where;
  };
  std::optional<PendingKeyBy> pending_key_by_;
};

absl::StatusOr<std::unique_ptr<CompiledPipeline>> CompilePipeline(const Config& root, const RunOverrides& overrides) {
  return Compiler(root, overrides).Compile();
}

absl::StatusOr<std::unique_ptr<CompiledPipeline>> LoadPipelineFile(const std::string& path,
                                                                   const RunOverrides& overrides) {
  CAIRN_ASSIGN_OR_RETURN(Config root, Config::LoadFile(path));
  return CompilePipeline(root, overrides);
}

}  // namespace cairn::pipeline
