#include "cairn/stream/file_connector.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fmt/format.h"

namespace cairn::stream {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cairn_file_connector_XXXXXX";
    char* made = ::mkdtemp(tmpl);
    EXPECT_NE(made, nullptr);
    path_ = made != nullptr ? made : "/tmp";
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, std::string_view content, bool append = false) {
  std::ofstream out(path, append ? std::ios::binary | std::ios::app : std::ios::binary | std::ios::trunc);
  out << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Collects rejected records in memory.
class RecordingDeadLetter : public DeadLetterSink {
 public:
  struct Entry {
    std::string origin, raw, error;
  };
  void Reject(std::string_view origin, std::string_view raw, std::string_view error) override {
    entries.push_back({std::string(origin), std::string(raw), std::string(error)});
  }
  uint64_t rejected() const override { return entries.size(); }
  std::vector<Entry> entries;
};

struct Read {
  std::vector<Row> rows;
  std::vector<EventTime> times;
};

// Polls until the end of the input (bounded sources only).
Read ReadToEnd(FileSource& source, size_t max_records = 1000) {
  Read all;
  SourceBatch<Row> batch;
  for (int i = 0; i < 100000; ++i) {
    batch.clear();
    absl::StatusOr<PollStatus> st = source.Poll(batch, max_records, milliseconds(0));
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) break;
    EXPECT_LE(batch.records.size(), max_records);
    if (!batch.times.empty()) {
      EXPECT_EQ(batch.times.size(), batch.records.size());
    }
    for (Row& r : batch.records) all.rows.push_back(std::move(r));
    for (EventTime t : batch.times) all.times.push_back(t);
    if (*st == PollStatus::kEndOfInput) break;
  }
  return all;
}

class FileSourceTest : public ::testing::Test {
 protected:
  SourceContext Context(int subtask = 0, int parallelism = 1) {
    SourceContext ctx;
    ctx.name = "src";
    ctx.subtask = subtask;
    ctx.parallelism = parallelism;
    ctx.metrics = &metrics_;
    ctx.dead_letter = &dead_;
    return ctx;
  }
  FileSourceOptions Options(const std::string& path, FileFormat format = FileFormat::kCsv) {
    FileSourceOptions o;
    o.path = path;
    o.format = format;
    return o;
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  RecordingDeadLetter dead_;
};

TEST_F(FileSourceTest, CsvWithEventTimes) {
  std::string path = dir_ / "events.csv";
  WriteFile(path, "ts,sensor,value\n1700000000,a,1.5\n1700000001,b,2\n\n1700000002,\"c,d\",-3\n");
  FileSourceOptions o = Options(path);
  o.time_field = "ts";
  o.time_format = "epoch_s";
  FileSource source(o);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  EXPECT_EQ(source.guarantee(), DeliveryGuarantee::kExactlyOnce);
  Read r = ReadToEnd(source);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0], (Row{{"ts", int64_t{1700000000}}, {"sensor", std::string("a")}, {"value", 1.5}}));
  EXPECT_EQ(r.rows[2], (Row{{"ts", int64_t{1700000002}}, {"sensor", std::string("c,d")}, {"value", int64_t{-3}}}));
  EXPECT_THAT(r.times, ElementsAre(1700000000000, 1700000001000, 1700000002000));
  EXPECT_EQ(source.lines(), 5u);
  EXPECT_TRUE(dead_.entries.empty());
}

TEST_F(FileSourceTest, JsonLinesWithIsoTimesAndNoTrailingNewline) {
  std::string path = dir_ / "events.jsonl";
  WriteFile(path,
            "{\"t\": \"2013-12-02T21:15:00Z\", \"pos\": {\"x\": 1}}\r\n  \n"
            "{\"t\": \"2013-12-02T21:15:00.5+00:00\", \"n\": 2}");
  FileSourceOptions o = Options(path, FileFormat::kJsonLines);
  o.time_field = "t";
  FileSource source(o);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  Read r = ReadToEnd(source);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(*r.rows[0].Get("pos"), Value(std::string("{\"x\": 1}")));
  EXPECT_EQ(*r.rows[1].Get("n"), Value(int64_t{2}));
  EXPECT_THAT(r.times, ElementsAre(1386018900000, 1386018900500));
}

TEST_F(FileSourceTest, HeaderOptions) {
  std::string path = dir_ / "plain.csv";
  WriteFile(path, "1;x\r\n2;y\r\n");
  FileSourceOptions o = Options(path);
  o.csv.header = false;
  o.csv.delimiter = ';';
  o.csv.columns = {"id", "name"};
  FileSource named(o);
  ASSERT_TRUE(named.Open(Context(), std::nullopt).ok());
  Read r = ReadToEnd(named);
  EXPECT_THAT(r.rows, ElementsAre(Row{{"id", int64_t{1}}, {"name", std::string("x")}},
                                  Row{{"id", int64_t{2}}, {"name", std::string("y")}}));
  EXPECT_TRUE(r.times.empty());

  o.csv.columns.clear();
  FileSource unnamed(o);
  ASSERT_TRUE(unnamed.Open(Context(), std::nullopt).ok());
  r = ReadToEnd(unnamed);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[1], (Row{{"col0", int64_t{2}}, {"col1", std::string("y")}}));

  std::string bom = dir_ / "bom.csv";
  WriteFile(bom, "\xEF\xBB\xBF\n\nid,name\n7,z");  // blank lines before the header
  FileSource with_bom(Options(bom));
  ASSERT_TRUE(with_bom.Open(Context(), std::nullopt).ok());
  r = ReadToEnd(with_bom);
  EXPECT_THAT(r.rows, ElementsAre(Row{{"id", int64_t{7}}, {"name", std::string("z")}}));
  // A restore reads that header again.
  std::string end = with_bom.Position();
  WriteFile(bom, "\n8,w\n", /*append=*/true);
  FileSource restored(Options(bom));
  ASSERT_TRUE(restored.Open(Context(), end).ok());
  r = ReadToEnd(restored);
  EXPECT_THAT(r.rows, ElementsAre(Row{{"id", int64_t{8}}, {"name", std::string("w")}}));
}

TEST_F(FileSourceTest, MalformedHeaderStopsTheSource) {
  std::string path = dir_ / "bad.csv";
  WriteFile(path, "a,\"b\n1,2\n");
  FileSource source(Options(path));
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  SourceBatch<Row> batch;
  absl::StatusOr<PollStatus> st = source.Poll(batch, 10, milliseconds(0));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), HasSubstr(path + ":1: cannot read the CSV header"));
}

TEST_F(FileSourceTest, MalformedLinesGoToTheDeadLetterAndReadingGoesOn) {
  std::string path = dir_ / "mixed.csv";
  std::string long_line = "9,2013-12-02," + std::string(300, 'x');
  WriteFile(path,
            "id,ts,note\n"
            "1,2013-12-02T21:15:00Z,ok\n"
            "2,\"unterminated,x\n"
            "3,yesterday,bad time\n"
            "4,,null time\n"
            "5,2013-12-02,too,many\n" +
                long_line +
                "\n"
                "6,2013-12-02,last\n");
  FileSourceOptions o = Options(path);
  o.time_field = "ts";
  o.time_format = "iso8601";
  o.max_line_bytes = 100;
  FileSource source(o);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  Read r = ReadToEnd(source);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(*r.rows[0].Get("id"), Value(int64_t{1}));
  EXPECT_EQ(*r.rows[1].Get("id"), Value(int64_t{6}));
  ASSERT_EQ(dead_.entries.size(), 5u);
  const std::string origin = "file:" + path + ":";
  EXPECT_EQ(dead_.entries[0].origin, origin + "3");
  EXPECT_EQ(dead_.entries[0].raw, "2,\"unterminated,x");
  EXPECT_THAT(dead_.entries[0].error, HasSubstr("no closing quote"));
  EXPECT_EQ(dead_.entries[1].origin, origin + "4");
  EXPECT_THAT(dead_.entries[1].error, HasSubstr("\"yesterday\" as iso8601"));
  EXPECT_EQ(dead_.entries[2].origin, origin + "5");
  EXPECT_THAT(dead_.entries[2].error, HasSubstr("from null as iso8601"));
  EXPECT_EQ(dead_.entries[3].origin, origin + "6");
  EXPECT_THAT(dead_.entries[3].error, HasSubstr("4 fields, expected 3"));
  EXPECT_EQ(dead_.entries[4].origin, origin + "7");
  EXPECT_EQ(dead_.entries[4].raw, long_line.substr(0, 100));
  EXPECT_THAT(dead_.entries[4].error, HasSubstr("longer than 100 bytes"));
}

TEST_F(FileSourceTest, MissingTimeFieldAndBadJson) {
  std::string path = dir_ / "e.jsonl";
  WriteFile(path, "{\"t\": 5}\n{\"u\": 6}\n[1]\n{\"t\": 7\n{\"t\": 8}\n");
  FileSourceOptions o = Options(path, FileFormat::kJsonLines);
  o.time_field = "t";
  o.time_format = "epoch_ms";
  FileSource source(o);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  Read r = ReadToEnd(source);
  EXPECT_THAT(r.times, ElementsAre(5, 8));
  ASSERT_EQ(dead_.entries.size(), 3u);
  EXPECT_THAT(dead_.entries[0].error, HasSubstr("no field \"t\" for the event time"));
  EXPECT_EQ(dead_.entries[1].origin, "file:" + path + ":3");
  EXPECT_THAT(dead_.entries[1].error, HasSubstr("expected one object"));
  EXPECT_EQ(dead_.entries[2].raw, "{\"t\": 7");
}

TEST_F(FileSourceTest, OverlongLineAcrossReads) {
  // The long line spans several reads and is dropped without being held whole.
  std::string path = dir_ / "long.jsonl";
  std::string content = "{\"a\": 1}\n{\"s\": \"" + std::string(50000, 'y') + "\"}\n{\"a\": 2}\n{\"s\": \"" +
                        std::string(9000, 'z');  // an over-long last line without newline
  WriteFile(path, content);
  FileSourceOptions o = Options(path, FileFormat::kJsonLines);
  o.max_line_bytes = 5000;
  o.read_bytes = 4096;
  FileSource source(o);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  Read r = ReadToEnd(source, 1);
  EXPECT_THAT(r.rows, ElementsAre(Row{{"a", int64_t{1}}}, Row{{"a", int64_t{2}}}));
  ASSERT_EQ(dead_.entries.size(), 2u);
  EXPECT_EQ(dead_.entries[0].origin, "file:" + path + ":2");
  EXPECT_EQ(dead_.entries[0].raw.size(), 5000u);
  EXPECT_EQ(dead_.entries[1].origin, "file:" + path + ":4");
  EXPECT_EQ(source.lines(), 4u);
}

// Every position a reader could checkpoint restores to exactly the rest.
TEST_F(FileSourceTest, RestoreFromEveryPositionGivesExactlyTheRest) {
  for (FileFormat format : {FileFormat::kCsv, FileFormat::kJsonLines}) {
    std::string path = dir_ / "many";
    std::string content = format == FileFormat::kCsv ? "id,name\n" : "";
    for (int i = 0; i < 3000; ++i) {
      if (i % 500 == 7) content += "oops\"\n";  // malformed: rejected, still counted as a line
      content += format == FileFormat::kCsv ? fmt::format("{},name-{}\n", i, i)
                                            : fmt::format("{{\"id\":{},\"name\":\"name-{}\"}}\n", i, i);
    }
    WriteFile(path, content);
    FileSourceOptions o = Options(path, format);
    o.read_bytes = 4096;  // many refills
    FileSource first(o);
    ASSERT_TRUE(first.Open(Context(), std::nullopt).ok());
    std::vector<Row> all;
    std::vector<std::pair<std::string, size_t>> positions;  // position, rows read before it
    positions.emplace_back(first.Position(), 0);
    SourceBatch<Row> batch;
    while (true) {
      batch.clear();
      absl::StatusOr<PollStatus> st = first.Poll(batch, 97, milliseconds(0));
      ASSERT_TRUE(st.ok()) << st.status();
      for (Row& row : batch.records) all.push_back(std::move(row));
      positions.emplace_back(first.Position(), all.size());
      if (*st == PollStatus::kEndOfInput) break;
    }
    ASSERT_EQ(all.size(), 3000u);
    EXPECT_EQ(all[2999], (Row{{"id", int64_t{2999}}, {"name", std::string("name-2999")}}));
    std::vector<RecordingDeadLetter::Entry> rejected = dead_.entries;
    ASSERT_EQ(rejected.size(), 6u);
    EXPECT_EQ(rejected[0].origin, "file:" + path + (format == FileFormat::kCsv ? ":9" : ":8"));
    for (size_t k = 0; k < positions.size(); k += 3) {
      dead_.entries.clear();
      FileSource again(o);
      ASSERT_TRUE(again.Open(Context(), positions[k].first).ok());
      Read rest = ReadToEnd(again, 1000);
      ASSERT_EQ(rest.rows.size(), all.size() - positions[k].second) << k;
      EXPECT_TRUE(std::equal(rest.rows.begin(), rest.rows.end(), all.begin() + positions[k].second)) << k;
      // The malformed lines after the position, with the same line numbers.
      ASSERT_LE(dead_.entries.size(), rejected.size());
      for (size_t j = 0; j < dead_.entries.size(); ++j) {
        EXPECT_EQ(dead_.entries[j].origin, rejected[rejected.size() - dead_.entries.size() + j].origin);
      }
    }
    dead_.entries.clear();
  }
}

TEST_F(FileSourceTest, RestoreErrors) {
  std::string path = dir_ / "r.csv";
  WriteFile(path, "a\n1\n");
  FileSource source(Options(path));
  EXPECT_FALSE(source.Open(Context(), std::string("junk")).ok());
  ByteWriter w;
  w.U8(1);
  w.U64(1000);
  w.U64(3);
  FileSource past(Options(path));
  absl::Status s = past.Open(Context(), w.Take());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("past the end of the file"));

  FileSource missing(Options(dir_ / "none.csv"));
  s = missing.Open(Context(), std::nullopt);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("none.csv"));

  FileSourceOptions o = Options(path);
  o.time_field = "a";
  o.time_format = "nanos";
  FileSource bad_format(o);
  EXPECT_THAT(std::string(bad_format.Open(Context(), std::nullopt).message()), HasSubstr("unknown event time format"));
}

TEST_F(FileSourceTest, FollowSeesAppendedLinesAndLeavesAPartialLine) {
  std::string path = dir_ / "tail.csv";
  WriteFile(path, "id,v\n1,a\n");
  FileSourceOptions o = Options(path);
  o.follow = true;
  FileSource source(o);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  SourceBatch<Row> batch;
  absl::StatusOr<PollStatus> st = source.Poll(batch, 100, milliseconds(0));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, PollStatus::kRecords);
  ASSERT_EQ(batch.records.size(), 1u);

  batch.clear();
  auto start = std::chrono::steady_clock::now();
  st = source.Poll(batch, 100, milliseconds(30));
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, PollStatus::kIdle);
  EXPECT_GE(waited, milliseconds(25));
  EXPECT_LT(waited, milliseconds(1000));

  WriteFile(path, "2,b\n3,c", /*append=*/true);  // "3,c" is not complete yet
  batch.clear();
  st = source.Poll(batch, 100, milliseconds(0));
  ASSERT_TRUE(st.ok());
  EXPECT_THAT(batch.records, ElementsAre(Row{{"id", int64_t{2}}, {"v", std::string("b")}}));
  std::string at_partial = source.Position();
  batch.clear();
  st = source.Poll(batch, 100, milliseconds(5));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, PollStatus::kIdle);
  EXPECT_EQ(source.Position(), at_partial);

  // A line completed while Poll waits is picked up within the same call.
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(20));
    WriteFile(path, "0\n", /*append=*/true);
  });
  batch.clear();
  st = source.Poll(batch, 100, milliseconds(2000));
  writer.join();
  ASSERT_TRUE(st.ok());
  EXPECT_THAT(batch.records, ElementsAre(Row{{"id", int64_t{3}}, {"v", std::string("c0")}}));

  // Restoring at the partial line reads the completed line, and the header again.
  FileSource restored(o);
  ASSERT_TRUE(restored.Open(Context(), at_partial).ok());
  batch.clear();
  st = restored.Poll(batch, 100, milliseconds(0));
  ASSERT_TRUE(st.ok());
  EXPECT_THAT(batch.records, ElementsAre(Row{{"id", int64_t{3}}, {"v", std::string("c0")}}));
}

TEST_F(FileSourceTest, OnlySubtaskZeroReads) {
  std::string path = dir_ / "p.csv";
  WriteFile(path, "a\n1\n");
  FileSource other(Options(path));
  ASSERT_TRUE(other.Open(Context(1, 2), std::nullopt).ok());
  SourceBatch<Row> batch;
  absl::StatusOr<PollStatus> st = other.Poll(batch, 10, milliseconds(100));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, PollStatus::kEndOfInput);
  EXPECT_TRUE(batch.records.empty());
}

TEST_F(FileSourceTest, StdinIsAtMostOnce) {
  FileSource source(Options("-"));
  EXPECT_EQ(source.guarantee(), DeliveryGuarantee::kAtMostOnce);
}

// ---------------------------------------------------------------------------
// FileSink

class FileSinkTest : public ::testing::Test {
 protected:
  SinkContext Context(int subtask = 0, int parallelism = 1) {
    SinkContext ctx;
    ctx.name = "sink";
    ctx.subtask = subtask;
    ctx.parallelism = parallelism;
    ctx.metrics = &metrics_;
    ctx.dead_letter = &dead_;
    return ctx;
  }
  FileSinkOptions Options(FileFormat format = FileFormat::kCsv) {
    FileSinkOptions o;
    o.path = path_;
    o.format = format;
    return o;
  }
  static std::vector<Row> Rows(int from, int to) {
    std::vector<Row> rows;
    for (int i = from; i < to; ++i) rows.push_back(Row{{"id", int64_t{i}}, {"name", fmt::format("n{}", i)}});
    return rows;
  }
  static std::string Csv(int from, int to, bool header) {
    std::string s = header ? "id,name\n" : "";
    for (int i = from; i < to; ++i) s += fmt::format("{},n{}\n", i, i);
    return s;
  }
  absl::Status WriteRows(FileSink& sink, int from, int to) {
    std::vector<Row> rows = Rows(from, to);
    std::vector<EventTime> times(rows.size(), 0);
    return sink.Write(rows, times);
  }

  TempDir dir_;
  std::string path_ = dir_ / "out.csv";
  MetricsRegistry metrics_;
  RecordingDeadLetter dead_;
};

TEST_F(FileSinkTest, OutputIsVisibleOnlyAfterCommit) {
  FileSink sink(Options());
  ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
  EXPECT_EQ(sink.guarantee(), DeliveryGuarantee::kExactlyOnce);
  ASSERT_TRUE(WriteRows(sink, 0, 3).ok());
  EXPECT_EQ(ReadFile(path_), "");
  absl::StatusOr<std::string> s1 = sink.PrepareCheckpoint(1);
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(ReadFile(path_), "");
  EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv", "out.csv.pending-1"));
  ASSERT_TRUE(sink.CommitCheckpoint(1).ok());
  EXPECT_EQ(ReadFile(path_), Csv(0, 3, true));
  EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));

  ASSERT_TRUE(WriteRows(sink, 3, 5).ok());
  ASSERT_TRUE(sink.PrepareCheckpoint(2).ok());
  ASSERT_TRUE(sink.PrepareCheckpoint(3).ok());  // an empty epoch
  ASSERT_TRUE(sink.CommitCheckpoint(2).ok());
  ASSERT_TRUE(sink.CommitCheckpoint(3).ok());
  EXPECT_EQ(ReadFile(path_), Csv(0, 5, true));  // the header once
  ASSERT_TRUE(WriteRows(sink, 5, 6).ok());
  ASSERT_TRUE(sink.Close().ok());  // the end of a bounded pipeline commits the rest
  EXPECT_EQ(ReadFile(path_), Csv(0, 6, true));
  EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
}

TEST_F(FileSinkTest, CrashAfterPrepareBeforeCommit) {
  std::string s1, s2;
  {
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
    ASSERT_TRUE(WriteRows(sink, 0, 2).ok());
    s1 = *sink.PrepareCheckpoint(1);
    ASSERT_TRUE(sink.CommitCheckpoint(1).ok());
    ASSERT_TRUE(WriteRows(sink, 2, 4).ok());
    s2 = *sink.PrepareCheckpoint(2);
    ASSERT_TRUE(WriteRows(sink, 4, 6).ok());  // a third epoch, never prepared
  }  // crash: no commit of 2, no close
  EXPECT_EQ(ReadFile(path_), Csv(0, 2, true));
  {
    // Checkpoint 2 was durable: its output is committed on restore.
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), s2).ok());
    EXPECT_EQ(ReadFile(path_), Csv(0, 4, true));
    EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
    // The replayed third epoch follows, without a second header.
    ASSERT_TRUE(WriteRows(sink, 4, 6).ok());
    ASSERT_TRUE(sink.PrepareCheckpoint(3).ok());
    ASSERT_TRUE(sink.CommitCheckpoint(3).ok());
    EXPECT_EQ(ReadFile(path_), Csv(0, 6, true));
  }
}

TEST_F(FileSinkTest, CrashBeforeThePendingCommitRestoresTheOlderCheckpoint) {
  std::string s1;
  {
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
    ASSERT_TRUE(WriteRows(sink, 0, 2).ok());
    s1 = *sink.PrepareCheckpoint(1);
    ASSERT_TRUE(sink.CommitCheckpoint(1).ok());
    ASSERT_TRUE(WriteRows(sink, 2, 4).ok());
    ASSERT_TRUE(sink.PrepareCheckpoint(2).ok());
  }
  // Checkpoint 2 never became durable: the engine restores 1; epoch 2's pending file goes.
  FileSink sink(Options());
  ASSERT_TRUE(sink.Open(Context(), s1).ok());
  EXPECT_EQ(ReadFile(path_), Csv(0, 2, true));
  EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
}

TEST_F(FileSinkTest, CrashInTheMiddleOfACommit) {
  std::string s2;
  std::string pending;
  {
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
    ASSERT_TRUE(WriteRows(sink, 0, 2).ok());
    ASSERT_TRUE(sink.PrepareCheckpoint(1).ok());
    ASSERT_TRUE(sink.CommitCheckpoint(1).ok());
    ASSERT_TRUE(WriteRows(sink, 2, 50).ok());
    s2 = *sink.PrepareCheckpoint(2);
    pending = ReadFile(path_ + ".pending-2");
  }
  ASSERT_EQ(pending, Csv(2, 50, false));
  // Half of the pending bytes reached the file, plus some garbage, when the crash came.
  WriteFile(path_, pending.substr(0, pending.size() / 2) + "garbage", /*append=*/true);
  for (int attempt = 0; attempt < 2; ++attempt) {  // restoring twice changes nothing
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), s2).ok());
    EXPECT_EQ(ReadFile(path_), Csv(0, 50, true));
    EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
  }
}

TEST_F(FileSinkTest, RestoringAnOlderStateCutsLaterEpochs) {
  std::vector<std::string> states;
  {
    FileSink sink(Options(FileFormat::kJsonLines));
    ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
    for (int epoch = 1; epoch <= 4; ++epoch) {
      ASSERT_TRUE(WriteRows(sink, (epoch - 1) * 10, epoch * 10).ok());
      states.push_back(*sink.PrepareCheckpoint(epoch));
      ASSERT_TRUE(sink.CommitCheckpoint(epoch).ok());
    }
    ASSERT_TRUE(WriteRows(sink, 40, 45).ok());
  }
  std::string expected;
  for (const Row& r : Rows(0, 40)) expected += FormatJsonRow(r) + "\n";
  EXPECT_EQ(ReadFile(path_), expected);
  for (int restore = 3; restore >= 0; --restore) {  // checkpoint restore+1 holds epochs 1..restore+1
    FileSink sink(Options(FileFormat::kJsonLines));
    ASSERT_TRUE(sink.Open(Context(), states[restore]).ok());
    std::string want;
    for (const Row& r : Rows(0, (restore + 1) * 10)) want += FormatJsonRow(r) + "\n";
    EXPECT_EQ(ReadFile(path_), want) << restore;
    EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
  }
}

// A crash at every point of three epochs, then a restore from each checkpoint
// that was prepared by then: the file holds exactly the restored checkpoint's epochs.
TEST_F(FileSinkTest, CrashAnywhereRestoreAnyPreparedCheckpoint) {
  enum Crash { kAfterWrite, kAfterPrepare, kMidCommit, kBeforeUnlink, kAfterCommit };
  const int kEpochs = 3;
  auto rows_of = [](int epoch) { return std::make_pair((epoch - 1) * 7, epoch * 7); };
  for (int crash_epoch = 1; crash_epoch <= kEpochs; ++crash_epoch) {
    for (Crash crash : {kAfterWrite, kAfterPrepare, kMidCommit, kBeforeUnlink, kAfterCommit}) {
      const int prepared = crash == kAfterWrite ? crash_epoch - 1 : crash_epoch;
      for (int restore = 0; restore <= prepared; ++restore) {  // 0: a fresh start
        std::vector<std::string> states;
        {
          FileSink sink(Options());
          ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
          for (int epoch = 1; epoch <= crash_epoch; ++epoch) {
            auto [from, to] = rows_of(epoch);
            ASSERT_TRUE(WriteRows(sink, from, to).ok());
            if (epoch == crash_epoch && crash == kAfterWrite) break;
            states.push_back(*sink.PrepareCheckpoint(epoch));
            if (epoch == crash_epoch && crash != kAfterCommit) {
              if (crash == kMidCommit || crash == kBeforeUnlink) {
                std::string pending = ReadFile(path_ + fmt::format(".pending-{}", epoch));
                WriteFile(path_, crash == kMidCommit ? pending.substr(0, pending.size() / 3) : pending, true);
              }
              break;
            }
            ASSERT_TRUE(sink.CommitCheckpoint(epoch).ok());
          }
        }  // the crash
        ASSERT_EQ(static_cast<int>(states.size()), prepared);
        FileSink sink(Options());
        std::optional<std::string> state;
        if (restore > 0) state = states[restore - 1];
        ASSERT_TRUE(sink.Open(Context(), state).ok()) << crash_epoch << " " << crash << " " << restore;
        EXPECT_EQ(ReadFile(path_), restore == 0 ? "" : Csv(0, rows_of(restore).second, true))
            << "crash in epoch " << crash_epoch << " at point " << crash << ", restoring " << restore;
        EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
      }
    }
  }
}

TEST_F(FileSinkTest, SeveralPreparedEpochsAwaitingCommit) {
  std::string s2;
  {
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
    ASSERT_TRUE(WriteRows(sink, 0, 2).ok());
    ASSERT_TRUE(sink.PrepareCheckpoint(1).ok());
    ASSERT_TRUE(WriteRows(sink, 2, 4).ok());
    s2 = *sink.PrepareCheckpoint(2);
    ASSERT_TRUE(WriteRows(sink, 4, 6).ok());
    ASSERT_TRUE(sink.PrepareCheckpoint(3).ok());
    EXPECT_EQ(ReadFile(path_), "");
    ASSERT_TRUE(sink.CommitCheckpoint(2).ok());  // covers 1, whose notice never came
    EXPECT_EQ(ReadFile(path_), Csv(0, 4, true));
  }
  // Restoring checkpoint 2 after all: 1 and 2 stay, 3 is cut.
  {
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), s2).ok());
    EXPECT_EQ(ReadFile(path_), Csv(0, 4, true));
  }
  // Neither 1 nor 2 committed before the crash: restoring 2 commits both.
  {
    std::string state;
    {
      FileSink sink(Options());
      ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
      ASSERT_TRUE(WriteRows(sink, 0, 2).ok());
      ASSERT_TRUE(sink.PrepareCheckpoint(1).ok());
      ASSERT_TRUE(WriteRows(sink, 2, 4).ok());
      state = *sink.PrepareCheckpoint(2);
    }
    FileSink sink(Options());
    ASSERT_TRUE(sink.Open(Context(), state).ok());
    EXPECT_EQ(ReadFile(path_), Csv(0, 4, true));
    EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv"));
  }
}

TEST_F(FileSinkTest, FreshStartEmptiesTheFileAndRemovesStrayPendingFiles) {
  WriteFile(path_, "old output\n");
  WriteFile(path_ + ".pending-7", "stray\n");
  WriteFile(dir_ / "out.csv.pending-x", "not ours\n");
  WriteFile(dir_ / "out.csv-1.pending-2", "another subtask's\n");
  FileSink sink(Options());
  ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
  EXPECT_EQ(ReadFile(path_), "");
  EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv", "out.csv-1.pending-2", "out.csv.pending-x"));
}

TEST_F(FileSinkTest, SubtasksWriteTheirOwnFiles) {
  FileSink sink(Options(FileFormat::kJsonLines));
  ASSERT_TRUE(sink.Open(Context(2, 3), std::nullopt).ok());
  EXPECT_EQ(sink.file(), path_ + "-2");
  ASSERT_TRUE(WriteRows(sink, 0, 1).ok());
  ASSERT_TRUE(sink.PrepareCheckpoint(5).ok());
  EXPECT_TRUE(std::filesystem::exists(path_ + "-2.pending-5"));
  ASSERT_TRUE(sink.CommitCheckpoint(5).ok());
  EXPECT_EQ(ReadFile(path_ + "-2"), "{\"id\":0,\"name\":\"n0\"}\n");
}

TEST_F(FileSinkTest, NonConsecutiveCheckpointIds) {
  FileSink sink(Options());
  ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
  ASSERT_TRUE(WriteRows(sink, 0, 1).ok());
  ASSERT_TRUE(sink.PrepareCheckpoint(4).ok());  // the rows went to pending-1 first
  EXPECT_THAT(DirEntries(dir_.path()), ElementsAre("out.csv", "out.csv.pending-4"));
  ASSERT_TRUE(sink.CommitCheckpoint(4).ok());
  EXPECT_EQ(ReadFile(path_), Csv(0, 1, true));
}

TEST_F(FileSinkTest, BadStateIsRejected) {
  WriteFile(dir_ / "keep", "precious\n");
  FileSink sink(Options());
  EXPECT_FALSE(sink.Open(Context(), std::string("\x01garbage")).ok());
  ByteWriter w;  // a state that names a file that is not a pending file of this sink
  w.U8(1);
  w.I64(3);
  w.U64(0);
  w.Varint(1);
  w.I64(3);
  w.U64(0);
  w.U64(9);
  w.String("keep");
  FileSink foreign(Options());
  absl::Status s = foreign.Open(Context(), w.Take());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a pending file"));
  EXPECT_EQ(ReadFile(dir_ / "keep"), "precious\n");

  // A file shorter than what was committed was changed behind the sink's back.
  std::string state;
  {
    FileSink ok(Options());
    ASSERT_TRUE(ok.Open(Context(), std::nullopt).ok());
    ASSERT_TRUE(WriteRows(ok, 0, 5).ok());
    state = *ok.PrepareCheckpoint(1);
    ASSERT_TRUE(ok.CommitCheckpoint(1).ok());
  }
  WriteFile(path_, "short\n");
  FileSink shorter(Options());
  s = shorter.Open(Context(), state);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
}

TEST_F(FileSinkTest, ReadBackThroughFileSource) {
  FileSinkOptions o = Options();
  o.buffer_bytes = 4096;  // several flushes per epoch
  FileSink sink(o);
  ASSERT_TRUE(sink.Open(Context(), std::nullopt).ok());
  std::vector<Row> rows;
  for (int i = 0; i < 2000; ++i) {
    rows.push_back(Row{{"id", int64_t{i}}, {"x", i * 0.5}, {"s", fmt::format("a,\"{}\"", i)}, {"none", Value()}});
  }
  std::vector<EventTime> times(rows.size(), 0);
  ASSERT_TRUE(sink.Write(rows, times).ok());
  ASSERT_TRUE(sink.Close().ok());
  FileSourceOptions so;
  so.path = path_;
  FileSource source(so);
  SourceContext ctx;
  ctx.metrics = &metrics_;
  ctx.dead_letter = &dead_;
  ASSERT_TRUE(source.Open(ctx, std::nullopt).ok());
  Read r = ReadToEnd(source);
  EXPECT_EQ(r.rows, rows);
}

// ---------------------------------------------------------------------------
// DeadLetterFile

TEST(DeadLetterFileTest, WritesJsonLinesFromManyThreads) {
  TempDir dir;
  std::string path = dir / "dead.jsonl";
  absl::StatusOr<std::unique_ptr<DeadLetterFile>> dead = DeadLetterFile::Open(path);
  ASSERT_TRUE(dead.ok()) << dead.status();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) (*dead)->Reject(fmt::format("file:x:{}", i), fmt::format("raw \"{}\"\n\xff", t), "bad");
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ((*dead)->rejected(), 2000u);
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    absl::StatusOr<Row> row = ParseJsonRow(line);
    ASSERT_TRUE(row.ok()) << row.status() << " " << line;
    EXPECT_EQ(*row->Get("error"), Value(std::string("bad")));
    EXPECT_THAT(std::get<std::string>(*row->Get("raw")), HasSubstr("\"\n\xEF\xBF\xBD"));  // invalid byte -> U+FFFD
    EXPECT_THAT(std::get<std::string>(*row->Get("origin")), HasSubstr("file:x:"));
    ++lines;
  }
  EXPECT_EQ(lines, 2000);
}

TEST(DeadLetterFileTest, CountsWithoutAFile) {
  absl::StatusOr<std::unique_ptr<DeadLetterFile>> dead = DeadLetterFile::Open("");
  ASSERT_TRUE(dead.ok());
  (*dead)->Reject("o", "r", "e");
  EXPECT_EQ((*dead)->rejected(), 1u);
  // The parent is a regular file: no directory can be made there.
  EXPECT_FALSE(DeadLetterFile::Open("/proc/version/dead.jsonl").ok());
}

}  // namespace
}  // namespace cairn::stream
