#include "cairn/cli/input.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/cli/format.h"

namespace cairn::cli {
namespace {

class FieldReaderTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    char name[] = "/tmp/cairn_input_testXXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(name, std::ios::binary) << content;
    paths_.push_back(name);
    return name;
  }
  void TearDown() override {
    for (const auto& p : paths_) std::remove(p.c_str());
  }

  // Reads every field; missing columns become "<missing>".
  std::vector<std::string> ReadAll(const std::string& content, int column, bool header = false) {
    FieldReaderOptions opt;
    opt.path = Write(content);
    opt.column = column;
    opt.skip_header = header;
    auto r = FieldReader::Open(opt);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::string> out;
    std::string_view f;
    for (;;) {
      auto res = (*r)->Next(&f);
      if (res == FieldReader::Result::kEnd) break;
      EXPECT_NE(res, FieldReader::Result::kError);
      out.push_back(res == FieldReader::Result::kField ? std::string(f) : "<missing>");
    }
    return out;
  }
  std::vector<std::string> paths_;
};

TEST_F(FieldReaderTest, WholeLinesWithCrLfAndNoFinalNewline) {
  EXPECT_EQ(ReadAll("a\r\nb\n\nc", 0), (std::vector<std::string>{"a", "b", "", "c"}));
}

TEST_F(FieldReaderTest, CsvColumnsWithQuotesAndMissingFields) {
  auto got = ReadAll("h1,h2\n1,x\n2,\"a,b\"\n3\n4,\"say \"\"hi\"\"\",z\n", 2, /*header=*/true);
  EXPECT_EQ(got, (std::vector<std::string>{"x", "a,b", "<missing>", "say \"hi\""}));
}

TEST_F(FieldReaderTest, LinesLongerThanTheBuffer) {
  std::string big(3 << 20, 'x');
  auto got = ReadAll("short\n" + big + "\nend\n", 0);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].size(), big.size());
  EXPECT_EQ(got[2], "end");
}

TEST_F(FieldReaderTest, LineNumbersCountHeaderAndSkippedLines) {
  FieldReaderOptions opt;
  opt.path = Write("h\n1\n2\n");
  opt.skip_header = true;
  auto r = FieldReader::Open(opt);
  std::string_view f;
  ASSERT_EQ((*r)->Next(&f), FieldReader::Result::kField);
  EXPECT_EQ(f, "1");
  EXPECT_EQ((*r)->line_number(), 2u);
}

TEST_F(FieldReaderTest, MissingFileAndDirectoryAreClearErrors) {
  FieldReaderOptions opt;
  opt.path = "/nonexistent/file.csv";
  auto r = FieldReader::Open(opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("cannot open '/nonexistent/file.csv'"),
            std::string::npos);
  opt.path = "/tmp";
  EXPECT_FALSE(FieldReader::Open(opt).ok());
}

TEST(ParseNumber, AcceptsNumbersOnly) {
  EXPECT_EQ(*ParseNumber("1.5"), 1.5);
  EXPECT_EQ(*ParseNumber(" -2e3 "), -2000);
  EXPECT_EQ(*ParseNumber("+7"), 7);
  EXPECT_FALSE(ParseNumber("abc"));
  EXPECT_FALSE(ParseNumber("1.5x"));
  EXPECT_FALSE(ParseNumber(""));
  EXPECT_FALSE(ParseNumber("nan"));
  EXPECT_FALSE(ParseNumber("inf"));
}

TEST(Format, Thousands) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(12345678), "12,345,678");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanCount(2500000), "2.5 M");
}

}  // namespace
}  // namespace cairn::cli
