// Throughput of the text formats and file connectors (lines/s, bytes/s), one core.
#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cairn/base/random.h"
#include "cairn/stream/file_connector.h"
#include "cairn/stream/format.h"
#include "fmt/format.h"

namespace cairn::stream {
namespace {

constexpr int kLines = 200000;

// Short sensor readings: "id,sensor,value,ts" (about 35 bytes a line).
std::string CsvLine(SplitMix64& rng, int i) {
  return fmt::format("{},press-{},{:.2f},{}", i, rng.Next() % 64, static_cast<double>(rng.Next() % 10000) / 100,
                     1700000000 + i / 100);
}

std::string JsonLine(SplitMix64& rng, int i) {
  return fmt::format(R"({{"id":{},"sensor":"press-{}","value":{:.2f},"ts":{}}})", i, rng.Next() % 64,
                     static_cast<double>(rng.Next() % 10000) / 100, 1700000000 + i / 100);
}

// A file of kLines lines, written once per process and removed at exit.
class BenchFile {
 public:
  explicit BenchFile(FileFormat format) {
    char tmpl[] = "/tmp/cairn_file_bench_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + (format == FileFormat::kCsv ? "/in.csv" : "/in.jsonl");
    std::ofstream out(path_);
    SplitMix64 rng(7);
    if (format == FileFormat::kCsv) out << "id,sensor,value,ts\n";
    for (int i = 0; i < kLines; ++i) out << (format == FileFormat::kCsv ? CsvLine(rng, i) : JsonLine(rng, i)) << '\n';
    out.close();
    bytes_ = std::filesystem::file_size(path_);
  }
  ~BenchFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string dir_;
  std::string path_;
  uint64_t bytes_ = 0;
};

const BenchFile& File(FileFormat format) {
  static BenchFile csv(FileFormat::kCsv);
  static BenchFile jsonl(FileFormat::kJsonLines);
  return format == FileFormat::kCsv ? csv : jsonl;
}

// Arg 0: no event time; 1: event time from "ts" (auto).
void ReadFile(benchmark::State& state, FileFormat format) {
  const BenchFile& file = File(format);
  DeadLetterFile dead;
  MetricsRegistry metrics;
  SourceContext ctx;
  ctx.metrics = &metrics;
  ctx.dead_letter = &dead;
  int64_t rows = 0;
  for (auto _ : state) {
    FileSourceOptions options;
    options.path = file.path();
    options.format = format;
    if (state.range(0) == 1) options.time_field = "ts";
    FileSource source(options);
    if (!source.Open(ctx, std::nullopt).ok()) {
      state.SkipWithError("open failed");
      return;
    }
    SourceBatch<Row> batch;
    while (true) {
      batch.clear();
      absl::StatusOr<PollStatus> st = source.Poll(batch, 4096, std::chrono::milliseconds(0));
      if (!st.ok()) {
        state.SkipWithError("poll failed");
        return;
      }
      rows += static_cast<int64_t>(batch.records.size());
      benchmark::DoNotOptimize(batch.records.data());
      if (*st == PollStatus::kEndOfInput) break;
    }
  }
  if (dead.rejected() != 0) state.SkipWithError("rows were rejected");
  state.SetItemsProcessed(rows);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * file.bytes()));
}

void BM_FileSourceCsv(benchmark::State& state) { ReadFile(state, FileFormat::kCsv); }
void BM_FileSourceJsonLines(benchmark::State& state) { ReadFile(state, FileFormat::kJsonLines); }
BENCHMARK(BM_FileSourceCsv)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FileSourceJsonLines)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_ParseJsonRow(benchmark::State& state) {
  SplitMix64 rng(3);
  std::vector<std::string> lines;
  for (int i = 0; i < 1024; ++i) lines.push_back(JsonLine(rng, i));
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<Row> row = ParseJsonRow(lines[i++ & 1023]);
    benchmark::DoNotOptimize(row);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseJsonRow);

void BM_CsvParse(benchmark::State& state) {
  SplitMix64 rng(3);
  std::vector<std::string> lines;
  for (int i = 0; i < 1024; ++i) lines.push_back(CsvLine(rng, i));
  CsvOptions options;
  options.header = false;
  options.columns = {"id", "sensor", "value", "ts"};
  CsvRowParser parser(options);
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<Row> row = parser.Parse(lines[i++ & 1023]);
    benchmark::DoNotOptimize(row);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CsvParse);

// Rows written and committed per second (one checkpoint per 10000 rows).
void BM_FileSinkCsv(benchmark::State& state) {
  char tmpl[] = "/tmp/cairn_file_bench_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::vector<Row> rows;
  for (int i = 0; i < 10000; ++i) {
    rows.push_back(Row{{"id", int64_t{i}}, {"sensor", fmt::format("press-{}", i % 64)}, {"value", i * 0.25}});
  }
  std::vector<EventTime> times(rows.size(), 0);
  FileSinkOptions options;
  options.path = dir + "/out.csv";
  FileSink sink(options);
  MetricsRegistry metrics;
  DeadLetterFile dead;
  SinkContext ctx;
  ctx.metrics = &metrics;
  ctx.dead_letter = &dead;
  if (!sink.Open(ctx, std::nullopt).ok()) {
    state.SkipWithError("open failed");
    return;
  }
  int64_t id = 0;
  for (auto _ : state) {
    if (!sink.Write(rows, times).ok() || !sink.PrepareCheckpoint(++id).ok() || !sink.CommitCheckpoint(id).ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  (void)sink.Close();
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows.size()));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FileSinkCsv)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::stream
