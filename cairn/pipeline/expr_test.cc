#include "cairn/pipeline/expr.h"

#include "cairn/pipeline/aggregate.h"
#include "gtest/gtest.h"

namespace cairn::pipeline {
namespace {

using stream::Row;
using stream::Value;

Row Sample() {
  return Row{{"temperature", int64_t{87}}, {"machine", std::string("press-7")}, {"load", 0.5},
             {"status", std::string("running")}, {"count", std::string("12")}, {"ok", true}};
}

Value Eval(const std::string& text, const Row& row = Sample()) {
  auto e = Expr::Parse(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status();
  return e.ok() ? e->Eval(row) : Value{};
}

TEST(Expr, ArithmeticKeepsIntegersAndDividesToDouble) {
  EXPECT_EQ(Eval("1 + 2 * 3"), Value(int64_t{7}));
  EXPECT_EQ(Eval("(1 + 2) * 3"), Value(int64_t{9}));
  EXPECT_EQ(Eval("7 / 2"), Value(3.5));
  EXPECT_EQ(Eval("7 % 4"), Value(int64_t{3}));
  EXPECT_EQ(Eval("-temperature"), Value(int64_t{-87}));
  EXPECT_EQ(Eval("(temperature - 32) * 5 / 9"), Value((87.0 - 32) * 5 / 9));
  EXPECT_EQ(Eval("load * 2"), Value(1.0));
  EXPECT_EQ(Eval("1 / 0"), Value{});            // null, not a crash
  EXPECT_EQ(Eval("missing + 1"), Value{});       // missing field is null
  EXPECT_EQ(Eval("9223372036854775807 + 1"), Value(9223372036854775808.0));  // no overflow
}

TEST(Expr, ComparisonsAndLogic) {
  EXPECT_EQ(Eval("temperature > 80 and machine == \"press-7\""), Value(true));
  EXPECT_EQ(Eval("temperature > 80 and not ok"), Value(false));
  EXPECT_EQ(Eval("status in ['idle', 'running']"), Value(true));
  EXPECT_EQ(Eval("status in []"), Value(false));
  EXPECT_EQ(Eval("count > 10"), Value(true));  // a numeric string compares as a number
  EXPECT_EQ(Eval("missing > 1 or missing < 1"), Value(false));
  EXPECT_EQ(Eval("missing == null"), Value(true));
  EXPECT_EQ(Eval("`temperature` >= 87"), Value(true));
}

TEST(Expr, StringsAndFunctions) {
  EXPECT_EQ(Eval("upper(machine) + \"/\" + status"), Value(std::string("PRESS-7/running")));
  EXPECT_EQ(Eval("machine + 1"), Value(std::string("press-71")));
  EXPECT_EQ(Eval("len(machine)"), Value(int64_t{7}));
  EXPECT_EQ(Eval("contains(machine, 'ss')"), Value(true));
  EXPECT_EQ(Eval("starts_with(machine, 'press') and ends_with(machine, '7')"), Value(true));
  EXPECT_EQ(Eval("round(load * 3)"), Value(int64_t{2}));
  EXPECT_EQ(Eval("max(temperature, 100)"), Value(int64_t{100}));
  EXPECT_EQ(Eval("coalesce(missing, 'default')"), Value(std::string("default")));
  EXPECT_EQ(Eval("num(count) * 2"), Value(24.0));
  EXPECT_EQ(Eval("is_null(missing)"), Value(true));
  EXPECT_EQ(Eval("sqrt(-1)"), Value{});
}

TEST(Expr, ParseErrorsSayWhereAndWhat) {
  for (const char* bad : {"1 +", "temperature >", "(1 + 2", "foo(1)", "abs(1, 2)", "'open", "status in 'x'",
                          "1 2", "`open", "1e", ""}) {
    auto e = Expr::Parse(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(std::string(e.status().message()).find("expression"), std::string::npos) << e.status();
  }
  auto e = Expr::Parse("temperature > > 3");
  EXPECT_NE(std::string(e.status().message()).find("column 15"), std::string::npos) << e.status();
}

TEST(Expr, TruthinessAndFieldShortcut) {
  EXPECT_FALSE(Expr::Truthy(Value{}));
  EXPECT_FALSE(Expr::Truthy(Value(int64_t{0})));
  EXPECT_FALSE(Expr::Truthy(Value(std::string())));
  EXPECT_TRUE(Expr::Truthy(Value(0.1)));
  EXPECT_EQ(Expr::Parse("machine")->field(), "machine");
  EXPECT_EQ(Expr::Parse("machine + 1")->field(), "");
}

TEST(RowAggregate, ComputesEveryFunctionAndMerges) {
  auto spec = *Config::Parse(R"(
    n: count()
    with_t: count(t)
    total: sum(t)
    mean: avg(t)
    lo: min(t)
    hi: max(t)
    sd: stddev(t)
    first_m: first(m)
    last_m: last(m)
    machines: distinct(m)
    median: p50(t)
    q: quantile(t, 0.9)
  )");
  auto agg = RowAggregate::Parse(spec);
  ASSERT_TRUE(agg.ok()) << agg.status();
  RowAcc a = agg->Create(), b = agg->Create();
  for (int i = 1; i <= 100; ++i) {
    Row r{{"t", int64_t{i}}, {"m", std::string("m") + std::to_string(i % 7)}};
    agg->Add(i <= 50 ? a : b, r);
  }
  agg->Add(a, Row{{"m", std::string("x")}});  // no t: counted by count() only
  ByteWriter w;
  b.Encode(w);
  RowAcc b2;
  ByteReader r(w.data());
  ASSERT_TRUE(RowAcc::Decode(r, &b2));
  agg->Merge(a, b2);
  Row out;
  agg->Result(a, out);
  EXPECT_EQ(*out.Get("n"), Value(int64_t{101}));
  EXPECT_EQ(*out.Get("with_t"), Value(int64_t{100}));
  EXPECT_EQ(*out.Get("total"), Value(5050.0));
  EXPECT_DOUBLE_EQ(std::get<double>(*out.Get("mean")), 50.5);
  EXPECT_EQ(*out.Get("lo"), Value(1.0));
  EXPECT_EQ(*out.Get("hi"), Value(100.0));
  EXPECT_NEAR(std::get<double>(*out.Get("sd")), 28.866, 0.01);
  EXPECT_EQ(*out.Get("first_m"), Value(std::string("m1")));
  EXPECT_EQ(*out.Get("last_m"), Value(std::string("m2")));  // 100 % 7
  EXPECT_EQ(*out.Get("machines"), Value(int64_t{8}));      // m0..m6 and x
  EXPECT_NEAR(std::get<double>(*out.Get("median")), 50, 2);
  EXPECT_NEAR(std::get<double>(*out.Get("q")), 90, 2);
}

TEST(RowAggregate, BadSpecsNameTheKey) {
  for (const char* bad : {"x: nope(t)", "x: avg()", "x: avg(t +)", "x: quantile(t)", "x: quantile(t, 2)", "x: 5"}) {
    auto agg = RowAggregate::Parse(*Config::Parse(bad, "pipe.yaml"));
    ASSERT_FALSE(agg.ok()) << bad;
    EXPECT_NE(std::string(agg.status().message()).find("'x'"), std::string::npos) << agg.status();
  }
}

}  // namespace
}  // namespace cairn::pipeline
