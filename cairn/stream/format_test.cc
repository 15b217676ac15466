#include "cairn/stream/format.h"

#include <cmath>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::stream {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

// ---------------------------------------------------------------------------
// JSON

TEST(JsonRowTest, TypedValuesInDocumentOrder) {
  absl::StatusOr<Row> row =
      ParseJsonRow(R"({"id": 42, "temp": 21.5, "ok": true, "bad": false, "note": null, "name": "press 7"})");
  ASSERT_TRUE(row.ok()) << row.status();
  Row want{{"id", int64_t{42}},        {"temp", 21.5},       {"ok", true},
           {"bad", false},             {"note", Value()},    {"name", std::string("press 7")}};
  EXPECT_EQ(*row, want);
}

TEST(JsonRowTest, IntegersAndDoubles) {
  absl::StatusOr<Row> row = ParseJsonRow(
      R"({"a": 1, "b": 1.0, "c": 1e2, "d": -9223372036854775808, "e": 9223372036854775808, "f": -0, "g": 2.5E-3, "below": -9223372036854775809,)"
      R"( "h": 123456789012345678901234567890})");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row->Get("a"), Value(int64_t{1}));
  EXPECT_EQ(*row->Get("b"), Value(1.0));
  EXPECT_EQ(*row->Get("c"), Value(100.0));
  EXPECT_EQ(*row->Get("d"), Value(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(*row->Get("e"), Value(9223372036854775808.0));  // beyond int64: a double
  EXPECT_EQ(*row->Get("f"), Value(int64_t{0}));
  EXPECT_EQ(*row->Get("below"), Value(-9223372036854775809.0));
  EXPECT_EQ(*row->Get("g"), Value(0.0025));
  ASSERT_TRUE(std::holds_alternative<double>(*row->Get("h")));
  EXPECT_DOUBLE_EQ(std::get<double>(*row->Get("h")), 1.2345678901234568e29);
}

TEST(JsonRowTest, NestedValuesKeptAsJsonText) {
  absl::StatusOr<Row> row = ParseJsonRow(R"({"id":1, "pos": {"x": 1.5, "y": [1, 2]} , "tags":["a","b"], "n":2})");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row->Get("pos"), Value(std::string(R"({"x": 1.5, "y": [1, 2]})")));
  EXPECT_EQ(*row->Get("tags"), Value(std::string(R"(["a","b"])")));
  EXPECT_EQ(*row->Get("n"), Value(int64_t{2}));
  EXPECT_EQ(row->size(), 4u);
}

TEST(JsonRowTest, EmptyObjectAndWhitespace) {
  absl::StatusOr<Row> row = ParseJsonRow("  { }\r\n");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->size(), 0u);
}

TEST(JsonRowTest, UnicodeEscapes) {
  absl::StatusOr<Row> row =
      ParseJsonRow(R"({"caf\u00e9": "\u00fcber \ud83d\ude00 \"q\" \\ \n\t", "k\u0000": "x", "raw": "żółw"})");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row->Get("café"), Value(std::string("über \xF0\x9F\x98\x80 \"q\" \\ \n\t")));
  EXPECT_EQ(*row->Get(std::string_view("k\0", 2)), Value(std::string("x")));
  EXPECT_EQ(*row->Get("raw"), Value(std::string("żółw")));
}

TEST(JsonRowTest, RepeatedNameKeepsLastValueAtFirstPosition) {
  absl::StatusOr<Row> row = ParseJsonRow(R"({"a": 1, "b": 2, "a": 3})");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row, (Row{{"a", int64_t{3}}, {"b", int64_t{2}}}));
}

TEST(JsonRowTest, ErrorsSayWhatAndWhere) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"", "empty input"},
      {"   ", "empty input"},
      {"[1, 2]", "expected one object, found an array at byte 0"},
      {"  42", "expected one object, found a number at byte 2"},
      {R"("s")", "found a string"},
      {"null", "found null"},
      {R"({"a": 1} {"b": 2})", "unexpected content after the object at byte 9"},
      {R"({"a": 1} x)", "brackets do not balance"},
      {R"({"a": 1)", "brackets do not balance"},
      {R"({"a": 1}})", "unexpected content after the object at byte 8: '}'"},
      {R"({"a": 1 "b": 2})", "improper structure"},
      {R"({a: 1})", "at byte 1"},
      {R"({"a": tru})", "'t' in field \"a\" at byte 6"},
      {R"({"a": nul})", "'n' in field \"a\" at byte 6"},
      {R"({"a": 1,})", "JSON:"},
      {R"({"a" 1})", "JSON:"},
      {R"({"a": 01})", "in field \"a\""},
      {R"({"a": 1.})", "in field \"a\""},
      {R"({"a": "x)", "JSON:"},
      {R"({"a": 1)", "JSON:"},
      {R"({"a": "\uZZZZ"})", "in field \"a\""},
      {R"({"a": "\ud800"})", "in field \"a\""},
      {"{\"a\": \"\xff\"}", "UTF-8"},
      {R"({"a": [1, tru]})", "field \"a\": invalid nested value starting at byte 6"},
      {R"({"a": {"b" 1}})", "in field \"a\""},
      {R"({"a": [1 2]})", "field \"a\": invalid nested value"},
      {R"({"a": 1e999})", "in field \"a\""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Row> row = ParseJsonRow(c.text);
    ASSERT_FALSE(row.ok()) << "accepted: " << c.text;
    EXPECT_THAT(Message(row.status()), HasSubstr(c.expect)) << c.text;
    EXPECT_EQ(row.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
  }
}

TEST(JsonRowTest, FormatRoundTrip) {
  Row row{{"id", int64_t{-7}},
          {"x", 1.0},
          {"y", 0.1},
          {"big", 1e300},
          {"ok", true},
          {"none", Value()},
          {"s", std::string("tab\there \"quoted\" back\\slash \x01 é")},
          {"weird \"name\"", std::string("")}};
  std::string json = FormatJsonRow(row);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_THAT(json, HasSubstr(R"("x":1.0)"));
  EXPECT_THAT(json, HasSubstr(R"(\u0001)"));
  absl::StatusOr<Row> back = ParseJsonRow(json);
  ASSERT_TRUE(back.ok()) << back.status() << " " << json;
  EXPECT_EQ(*back, row);
}

TEST(JsonRowTest, FormatNonFiniteAndInvalidUtf8) {
  Row row{{"nan", std::nan("")},
          {"inf", std::numeric_limits<double>::infinity()},
          {"bad", std::string("a\xff" "b\xc3")}};
  std::string json = FormatJsonRow(row);
  EXPECT_EQ(json, R"({"nan":null,"inf":null,"bad":"a\ufffdb\ufffd"})");
  EXPECT_TRUE(ParseJsonRow(json).ok());
}

// ---------------------------------------------------------------------------
// CSV

TEST(CsvTest, HeaderThenTypedRows) {
  CsvRowParser parser(CsvOptions{});
  bool is_header = false;
  absl::StatusOr<Row> header = parser.Parse("id,temp,ok,name,empty", &is_header);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(is_header);
  EXPECT_EQ(header->size(), 0u);
  EXPECT_THAT(parser.columns(), ::testing::ElementsAre("id", "temp", "ok", "name", "empty"));

  absl::StatusOr<Row> row = parser.Parse("42,21.5,true,press 7,", &is_header);
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_FALSE(is_header);
  EXPECT_EQ(*row, (Row{{"id", int64_t{42}},
                       {"temp", 21.5},
                       {"ok", true},
                       {"name", std::string("press 7")},
                       {"empty", Value()}}));
}

TEST(CsvTest, InferenceRules) {
  CsvOptions options;
  options.header = false;
  CsvRowParser parser(options);
  absl::StatusOr<Row> row = parser.Parse("-3,1e3,.5,007,0,-0.25,FALSE,nan,+5,1.2.3,\"12\",99999999999999999999");
  ASSERT_TRUE(row.ok()) << row.status();
  const std::vector<Field>& f = row->fields();
  ASSERT_EQ(f.size(), 12u);
  EXPECT_EQ(f[0].name, "col0");
  EXPECT_EQ(f[0].value, Value(int64_t{-3}));
  EXPECT_EQ(f[1].value, Value(1000.0));
  EXPECT_EQ(f[2].value, Value(0.5));
  EXPECT_EQ(f[3].value, Value(std::string("007")));
  EXPECT_EQ(f[4].value, Value(int64_t{0}));
  EXPECT_EQ(f[5].value, Value(-0.25));
  EXPECT_EQ(f[6].value, Value(false));
  EXPECT_EQ(f[7].value, Value(std::string("nan")));
  EXPECT_EQ(f[8].value, Value(std::string("+5")));
  EXPECT_EQ(f[9].value, Value(std::string("1.2.3")));
  EXPECT_EQ(f[10].value, Value(std::string("12")));  // quoted: a string
  EXPECT_EQ(f[11].value, Value(1e20));                // beyond int64: a double
}

TEST(CsvTest, NoInference) {
  CsvOptions options;
  options.header = false;
  options.infer_types = false;
  options.columns = {"a", "b"};
  CsvRowParser parser(options);
  absl::StatusOr<Row> row = parser.Parse("1,");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row, (Row{{"a", std::string("1")}, {"b", std::string("")}}));
}

TEST(CsvTest, Quoting) {
  CsvOptions options;
  options.header = false;
  CsvRowParser parser(options);
  absl::StatusOr<Row> row = parser.Parse(R"("a,b","say ""hi""","",x,"""",",")");
  ASSERT_TRUE(row.ok()) << row.status();
  const std::vector<Field>& f = row->fields();
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f[0].value, Value(std::string("a,b")));
  EXPECT_EQ(f[1].value, Value(std::string("say \"hi\"")));
  EXPECT_EQ(f[2].value, Value(std::string("")));
  EXPECT_EQ(f[3].value, Value(std::string("x")));
  EXPECT_EQ(f[4].value, Value(std::string("\"")));
  EXPECT_EQ(f[5].value, Value(std::string(",")));
}

TEST(CsvTest, TrailingDelimiterCrlfAndOtherDelimiters) {
  CsvOptions options;
  options.header = false;
  options.delimiter = ';';
  CsvRowParser parser(options);
  absl::StatusOr<Row> row = parser.Parse("1;a,b;\r");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row, (Row{{"col0", int64_t{1}}, {"col1", std::string("a,b")}, {"col2", Value()}}));

  options.delimiter = '\t';
  CsvRowParser tabs(options);
  row = tabs.Parse("x\t\"y\tz\"");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(*row, (Row{{"col0", std::string("x")}, {"col1", std::string("y\tz")}}));
}

TEST(CsvTest, HeaderDetails) {
  CsvRowParser parser(CsvOptions{});
  ASSERT_TRUE(parser.Parse("\xEF\xBB\xBF\"the id\",,x\r").ok());
  EXPECT_THAT(parser.columns(), ::testing::ElementsAre("the id", "col1", "x"));

  CsvRowParser duplicate(CsvOptions{});
  absl::StatusOr<Row> r = duplicate.Parse("a,b,a");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(Message(r.status()), HasSubstr("column name \"a\" appears twice (columns 1 and 3)"));
  // A failed header is not taken; the next line may still be the header.
  bool is_header = false;
  ASSERT_TRUE(duplicate.Parse("a,b,c", &is_header).ok());
  EXPECT_TRUE(is_header);
}

TEST(CsvTest, ErrorsSayWhatAndWhere) {
  struct Case {
    const char* line;
    const char* expect;
  };
  const Case cases[] = {
      {R"(1,"abc,3)", "quoted field 2 starting at byte 2 has no closing quote"},
      {R"(1,"ab"c,3)", "unexpected 'c' after the closing quote of field 2 at byte 6"},
      {R"(1,ab"c,3)", "stray '\"' inside unquoted field 2 at byte 4"},
      {"1,2", "2 fields, expected 3 (the header's columns)"},
      {"1,2,3,4", "4 fields, expected 3"},
      {"", "1 fields, expected 3"},
  };
  for (const Case& c : cases) {
    CsvRowParser parser(CsvOptions{});
    ASSERT_TRUE(parser.Parse("a,b,c").ok());
    absl::StatusOr<Row> row = parser.Parse(c.line);
    ASSERT_FALSE(row.ok()) << "accepted: " << c.line;
    EXPECT_THAT(Message(row.status()), HasSubstr(c.expect)) << c.line;
  }
  CsvOptions options;
  options.header = false;
  options.columns = {"a", "b"};
  CsvRowParser fixed(options);
  absl::StatusOr<Row> row = fixed.Parse("1,2,3");
  ASSERT_FALSE(row.ok());
  EXPECT_THAT(Message(row.status()), HasSubstr("3 fields, expected 2 (the configured columns)"));
}

TEST(CsvTest, FormatRoundTrip) {
  Row row{{"id", int64_t{7}},
          {"x", 1.0},
          {"ok", false},
          {"none", Value()},
          {"empty", std::string("")},
          {"number text", std::string("12")},
          {"bool text", std::string("true")},
          {"zip", std::string("007")},
          {"comma", std::string("a,b")},
          {"quote", std::string("say \"hi\"")},
          {"plain", std::string("hello world")}};
  std::string header = FormatCsvHeader(row);
  std::string line = FormatCsvRow(row);
  EXPECT_EQ(header, "id,x,ok,none,empty,number text,bool text,zip,comma,quote,plain");
  EXPECT_EQ(line, R"(7,1.0,false,,"","12","true",007,"a,b","say ""hi""",hello world)");
  CsvRowParser parser(CsvOptions{});
  ASSERT_TRUE(parser.Parse(header).ok());
  absl::StatusOr<Row> back = parser.Parse(line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, row);
}

TEST(CsvTest, FormatQuotesNamesAndOtherDelimiter) {
  Row row{{"a;b", std::string("x;y")}, {"c", 2.5}};
  EXPECT_EQ(FormatCsvHeader(row, ';'), "\"a;b\";c");
  EXPECT_EQ(FormatCsvRow(row, ';'), "\"x;y\";2.5");
  EXPECT_EQ(FormatCsvRow(Row{{"n", std::nan("")}, {"i", -std::numeric_limits<double>::infinity()}}), "NaN,-inf");
}

// ---------------------------------------------------------------------------
// Event time

EventTime Time(const Value& v, std::string_view format) {
  absl::StatusOr<EventTime> t = ParseEventTime(v, format);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : kMinTime;
}

TEST(EventTimeTest, EpochFormats) {
  EXPECT_EQ(Time(int64_t{1700000000123}, "epoch_ms"), 1700000000123);
  EXPECT_EQ(Time(1700000000123.4, "epoch_ms"), 1700000000123);
  EXPECT_EQ(Time(std::string("1700000000123"), "epoch_ms"), 1700000000123);
  EXPECT_EQ(Time(int64_t{1700000000}, "epoch_s"), 1700000000000);
  EXPECT_EQ(Time(1700000000.25, "epoch_s"), 1700000000250);
  EXPECT_EQ(Time(1.001, "epoch_s"), 1001);  // rounded, not cut: 1.001 * 1000 is 1000.99...
  EXPECT_EQ(Time(std::string("1700000000.5"), "epoch_s"), 1700000000500);
  EXPECT_EQ(Time(int64_t{-5}, "epoch_s"), -5000);
}

TEST(EventTimeTest, Auto) {
  EXPECT_EQ(Time(int64_t{1700000000}, "auto"), 1700000000000);       // seconds
  EXPECT_EQ(Time(int64_t{1700000000123}, "auto"), 1700000000123);    // milliseconds
  EXPECT_EQ(Time(1700000000.5, "auto"), 1700000000500);
  EXPECT_EQ(Time(std::string("1700000000"), "auto"), 1700000000000);
  EXPECT_EQ(Time(std::string("2023-11-14T22:13:20Z"), "auto"), 1700000000000);
  EXPECT_EQ(Time(int64_t{99999999999}, "auto"), 99999999999000);     // just below 1e11: seconds
  EXPECT_EQ(Time(int64_t{100000000000}, "auto"), 100000000000);      // 1e11: milliseconds
}

TEST(EventTimeTest, Iso8601) {
  EXPECT_EQ(Time(std::string("1970-01-01T00:00:00Z"), "iso8601"), 0);
  EXPECT_EQ(Time(std::string("2013-12-02 21:15:00"), "iso8601"), 1386018900000);
  EXPECT_EQ(Time(std::string("2013-12-02T21:15:00.250Z"), "iso8601"), 1386018900250);
  EXPECT_EQ(Time(std::string("2013-12-02T21:15:00.2Z"), "iso8601"), 1386018900200);
  EXPECT_EQ(Time(std::string("2013-12-02T21:15:00.123456789Z"), "iso8601"), 1386018900123);
  EXPECT_EQ(Time(std::string("2013-12-02T21:15:00,5"), "iso8601"), 1386018900500);
  EXPECT_EQ(Time(std::string("2013-12-02T22:15:00+01:00"), "iso8601"), 1386018900000);
  EXPECT_EQ(Time(std::string("2013-12-02T16:45:00-04:30"), "iso8601"), 1386018900000);
  EXPECT_EQ(Time(std::string("2013-12-02T22:15:00+0100"), "iso8601"), 1386018900000);
  EXPECT_EQ(Time(std::string("2013-12-02T23:15:00+02"), "iso8601"), 1386018900000);
  EXPECT_EQ(Time(std::string("2013-12-02t21:15z"), "iso8601"), 1386018900000);
  EXPECT_EQ(Time(std::string("2013-12-02"), "iso8601"), 1385942400000);
  EXPECT_EQ(Time(std::string("2000-02-29T12:00:00Z"), "iso8601"), 951825600000);
  EXPECT_EQ(Time(std::string("1969-12-31T23:59:59.500Z"), "iso8601"), -500);
  EXPECT_EQ(Time(std::string("1600-03-01T00:00:00Z"), "iso8601"), -11670912000000);
}

TEST(EventTimeTest, ErrorsNameValueAndFormat) {
  struct Case {
    Value v;
    const char* format;
    const char* expect;
  };
  const Case cases[] = {
      {std::string("abc"), "epoch_ms", "cannot read event time from \"abc\" as epoch_ms: not a number"},
      {Value(), "auto", "from null as auto: not a number or a timestamp string"},
      {true, "epoch_s", "from true as epoch_s"},
      {int64_t{5}, "iso8601", "from 5 as iso8601: not a string"},
      {std::string("2013-13-02"), "iso8601", "month 13 is not 1..12"},
      {std::string("2013-02-29"), "iso8601", "day 29 does not exist in 2013-02"},
      {std::string("2013-12-02T25:00:00"), "iso8601", "time 25:00:00 is out of range"},
      {std::string("2013-12-02X"), "auto", "expected 'T', 'Z' or a zone offset at character 11"},
      {std::string("2013-12"), "iso8601", "expected '-' after the month after the end"},
      {std::string("13-12-02"), "iso8601", "expected 4 digits of the year at character 3"},
      {std::string("2013-12-02T21:15:00."), "iso8601", "digits of the fraction"},
      {std::string("2013-12-02T21:15:00+25:00"), "iso8601", "zone offset 25:00 is out of range"},
      {std::string("2013-12-02T21:15:00Z junk"), "iso8601", "expected the end of the timestamp at character 21"},
      {std::string(""), "auto", "expected 4 digits of the year after the end"},
      {int64_t{std::numeric_limits<int64_t>::max()}, "epoch_s", "out of the range of event times"},
      {1e300, "epoch_ms", "out of the range of event times"},
      {std::nan(""), "epoch_ms", "not a finite number"},
      {int64_t{1}, "epoch_us", "unknown event time format \"epoch_us\""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<EventTime> t = ParseEventTime(c.v, c.format);
    ASSERT_FALSE(t.ok()) << ValueToString(c.v) << " " << c.format;
    EXPECT_THAT(Message(t.status()), HasSubstr(c.expect)) << ValueToString(c.v);
  }
}

}  // namespace
}  // namespace cairn::stream
