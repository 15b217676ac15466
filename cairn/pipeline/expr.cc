#include "cairn/pipeline/expr.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <vector>

#include "fmt/format.h"

namespace cairn::pipeline {

using stream::Row;
using stream::Value;

struct Expr::Node {
  enum class Kind { kLiteral, kField, kList, kUnary, kBinary, kCall };
  Kind kind = Kind::kLiteral;
  Value literal;
  std::string name;  // field, operator or function
  std::vector<std::shared_ptr<const Node>> args;
};

namespace {

using NodePtr = std::shared_ptr<const Expr::Node>;
using Kind = Expr::Node::Kind;

bool IsNull(const Value& v) { return v.index() == 0; }
bool IsNumber(const Value& v) { return v.index() == 2 || v.index() == 3; }
bool IsString(const Value& v) { return v.index() == 4; }

// Ordering of two values: nullopt when they are not comparable.
std::optional<int> Compare(const Value& a, const Value& b) {
  if (IsNull(a) || IsNull(b)) return std::nullopt;
  if (IsString(a) && IsString(b)) {
    int c = std::get<std::string>(a).compare(std::get<std::string>(b));
    return (c > 0) - (c < 0);
  }
  if (a.index() == 2 && b.index() == 2) {
    int64_t x = std::get<int64_t>(a), y = std::get<int64_t>(b);
    return (x > y) - (x < y);
  }
  auto x = stream::ValueToDouble(a), y = stream::ValueToDouble(b);
  if (!x || !y) {
    if (a.index() == 1 && b.index() == 1) return int(std::get<bool>(a)) - int(std::get<bool>(b));
    return std::nullopt;
  }
  return (*x > *y) - (*x < *y);
}

bool Equal(const Value& a, const Value& b) {
  if (IsNull(a) || IsNull(b)) return IsNull(a) && IsNull(b);
  auto c = Compare(a, b);
  return c && *c == 0;
}

Value Arith(const std::string& op, const Value& a, const Value& b) {
  if (IsNull(a) || IsNull(b)) return Value{};
  if (op == "+" && (IsString(a) || IsString(b)) && !(IsNumber(a) && IsNumber(b))) {
    if (IsString(a) && IsString(b)) return std::get<std::string>(a) + std::get<std::string>(b);
    return stream::ValueToString(a) + stream::ValueToString(b);
  }
  if (a.index() == 2 && b.index() == 2 && op != "/") {
    int64_t x = std::get<int64_t>(a), y = std::get<int64_t>(b), r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) return static_cast<double>(x) + static_cast<double>(y);
    } else if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) return static_cast<double>(x) - static_cast<double>(y);
    } else if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) return static_cast<double>(x) * static_cast<double>(y);
    } else {  // %
      if (y == 0 || (x == INT64_MIN && y == -1)) return Value{};
      r = x % y;
    }
    return r;
  }
  auto x = stream::ValueToDouble(a), y = stream::ValueToDouble(b);
  if (!x || !y) return Value{};
  if (op == "+") return *x + *y;
  if (op == "-") return *x - *y;
  if (op == "*") return *x * *y;
  if (op == "/") return *y == 0 ? Value{} : Value(*x / *y);
  return *y == 0 ? Value{} : Value(std::fmod(*x, *y));
}

Value Lower(std::string s, bool upper) {
  for (char& c : s) c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                                : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct FunctionInfo {
  const char* name;
  int min_args, max_args;  // max -1 = any
};
constexpr FunctionInfo kFunctions[] = {
    {"abs", 1, 1},       {"round", 1, 1},       {"floor", 1, 1},      {"ceil", 1, 1},   {"sqrt", 1, 1},
    {"min", 2, 2},       {"max", 2, 2},         {"lower", 1, 1},      {"upper", 1, 1},  {"len", 1, 1},
    {"contains", 2, 2},  {"starts_with", 2, 2}, {"ends_with", 2, 2},  {"str", 1, 1},    {"num", 1, 1},
    {"coalesce", 1, -1}, {"is_null", 1, 1},
};

Value Call(const std::string& f, const std::vector<Value>& a) {
  auto num = [&](size_t i) { return stream::ValueToDouble(a[i]); };
  auto str = [&](size_t i) -> std::optional<std::string> {
    if (IsNull(a[i])) return std::nullopt;
    return stream::ValueToString(a[i]);
  };
  if (f == "coalesce") {
    for (auto& v : a)
      if (!IsNull(v)) return v;
    return Value{};
  }
  if (f == "is_null") return IsNull(a[0]);
  if (f == "str") return IsNull(a[0]) ? Value{} : Value(stream::ValueToString(a[0]));
  if (f == "num") {
    auto x = num(0);
    return x ? Value(*x) : Value{};
  }
  if (f == "abs") {
    if (a[0].index() == 2 && std::get<int64_t>(a[0]) != INT64_MIN) return std::abs(std::get<int64_t>(a[0]));
    auto x = num(0);
    return x ? Value(std::fabs(*x)) : Value{};
  }
  if (f == "round" || f == "floor" || f == "ceil" || f == "sqrt") {
    auto x = num(0);
    if (!x) return Value{};
    if (f == "sqrt") return *x < 0 ? Value{} : Value(std::sqrt(*x));
    double r = f == "round" ? std::round(*x) : f == "floor" ? std::floor(*x) : std::ceil(*x);
    if (std::fabs(r) < 9.0e18) return static_cast<int64_t>(r);
    return r;
  }
  if (f == "min" || f == "max") {
    auto c = Compare(a[0], a[1]);
    if (!c) return Value{};
    return (f == "min") == (*c <= 0) ? a[0] : a[1];
  }
  if (f == "lower" || f == "upper") {
    auto s = str(0);
    return s ? Lower(*s, f == "upper") : Value{};
  }
  if (f == "len") {
    auto s = str(0);
    return s ? Value(static_cast<int64_t>(s->size())) : Value{};
  }
  auto s = str(0), t = str(1);
  if (!s || !t) return Value{};
  if (f == "contains") return s->find(*t) != std::string::npos;
  if (f == "starts_with") return s->rfind(*t, 0) == 0;
  return s->size() >= t->size() && s->compare(s->size() - t->size(), t->size(), *t) == 0;  // ends_with
}

Value EvalNode(const Expr::Node& n, const Row& row) {
  switch (n.kind) {
    case Kind::kLiteral:
      return n.literal;
    case Kind::kField: {
      const Value* v = row.Get(n.name);
      return v ? *v : Value{};
    }
    case Kind::kList:
      return Value{};  // only meaningful on the right of `in`
    case Kind::kUnary: {
      Value v = EvalNode(*n.args[0], row);
      if (n.name == "not") return !Expr::Truthy(v);
      if (v.index() == 2 && std::get<int64_t>(v) != INT64_MIN) return -std::get<int64_t>(v);
      auto x = stream::ValueToDouble(v);
      return x ? Value(-*x) : Value{};
    }
    case Kind::kBinary: {
      const std::string& op = n.name;
      if (op == "and") return Expr::Truthy(EvalNode(*n.args[0], row)) && Expr::Truthy(EvalNode(*n.args[1], row));
      if (op == "or") return Expr::Truthy(EvalNode(*n.args[0], row)) || Expr::Truthy(EvalNode(*n.args[1], row));
      Value a = EvalNode(*n.args[0], row);
      if (op == "in") {
        for (auto& item : n.args[1]->args)
          if (Equal(a, EvalNode(*item, row))) return true;
        return false;
      }
      Value b = EvalNode(*n.args[1], row);
      if (op == "==") return Equal(a, b);
      if (op == "!=") return !Equal(a, b);
      if (op == "<" || op == "<=" || op == ">" || op == ">=") {
        auto c = Compare(a, b);
        if (!c) return false;
        if (op == "<") return *c < 0;
        if (op == "<=") return *c <= 0;
        if (op == ">") return *c > 0;
        return *c >= 0;
      }
      return Arith(op, a, b);
    }
    case Kind::kCall: {
      std::vector<Value> args;
      args.reserve(n.args.size());
      for (auto& a : n.args) args.push_back(EvalNode(*a, row));
      return Call(n.name, args);
    }
  }
  return Value{};
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  absl::StatusOr<NodePtr> ParseAll() {
    auto e = Or();
    if (!e.ok()) return e;
    Skip();
    if (pos_ != s_.size()) return Error("an operator or the end");
    return e;
  }

 private:
  absl::Status Error(std::string_view expected) const {
    std::string near = pos_ < s_.size() ? fmt::format("'{}'", s_.substr(pos_, 12)) : "the end";
    return absl::InvalidArgumentError(
        fmt::format("expression \"{}\": at column {}, expected {} but found {}", s_, pos_ + 1, expected, near));
  }
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Word(std::string_view w) {
    Skip();
    if (s_.substr(pos_, w.size()) != w) return false;
    size_t end = pos_ + w.size();
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) return false;
    pos_ = end;
    return true;
  }
  bool Sym(std::string_view w) {
    Skip();
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  static NodePtr Make(Kind k, std::string name, std::vector<NodePtr> args) {
    auto n = std::make_shared<Expr::Node>();
    n->kind = k;
    n->name = std::move(name);
    n->args = std::move(args);
    return n;
  }

  absl::StatusOr<NodePtr> Or() {
    CAIRN_ASSIGN_OR_RETURN(NodePtr left, And());
    while (Word("or")) {
      CAIRN_ASSIGN_OR_RETURN(NodePtr right, And());
      left = Make(Kind::kBinary, "or", {left, right});
    }
    return left;
  }
  absl::StatusOr<NodePtr> And() {
    CAIRN_ASSIGN_OR_RETURN(NodePtr left, Not());
    while (Word("and")) {
      CAIRN_ASSIGN_OR_RETURN(NodePtr right, Not());
      left = Make(Kind::kBinary, "and", {left, right});
    }
    return left;
  }
  absl::StatusOr<NodePtr> Not() {
    if (Word("not")) {
      CAIRN_ASSIGN_OR_RETURN(NodePtr inner, Not());
      return Make(Kind::kUnary, "not", {inner});
    }
    return Comparison();
  }
  absl::StatusOr<NodePtr> Comparison() {
    CAIRN_ASSIGN_OR_RETURN(NodePtr left, Sum());
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (Sym(op)) {
        CAIRN_ASSIGN_OR_RETURN(NodePtr right, Sum());
        return Make(Kind::kBinary, op, {left, right});
      }
    }
    if (Word("in")) {
      if (!Sym("[")) return Error("'[' after 'in'");
      std::vector<NodePtr> items;
      if (!Sym("]")) {
        do {
          CAIRN_ASSIGN_OR_RETURN(NodePtr item, Sum());
          items.push_back(item);
        } while (Sym(","));
        if (!Sym("]")) return Error("',' or ']'");
      }
      return Make(Kind::kBinary, "in", {left, Make(Kind::kList, "", std::move(items))});
    }
    return left;
  }
  absl::StatusOr<NodePtr> Sum() {
    CAIRN_ASSIGN_OR_RETURN(NodePtr left, Product());
    for (;;) {
      std::string op;
      if (Sym("+")) op = "+";
      else if (Sym("-")) op = "-";
      else return left;
      CAIRN_ASSIGN_OR_RETURN(NodePtr right, Product());
      left = Make(Kind::kBinary, op, {left, right});
    }
  }
  absl::StatusOr<NodePtr> Product() {
    CAIRN_ASSIGN_OR_RETURN(NodePtr left, Unary());
    for (;;) {
      std::string op;
      if (Sym("*")) op = "*";
      else if (Sym("/")) op = "/";
      else if (Sym("%")) op = "%";
      else return left;
      CAIRN_ASSIGN_OR_RETURN(NodePtr right, Unary());
      left = Make(Kind::kBinary, op, {left, right});
    }
  }
  absl::StatusOr<NodePtr> Unary() {
    if (Sym("-")) {
      CAIRN_ASSIGN_OR_RETURN(NodePtr inner, Unary());
      return Make(Kind::kUnary, "-", {inner});
    }
    return Primary();
  }
  absl::StatusOr<NodePtr> Primary() {
    Skip();
    if (pos_ >= s_.size()) return Error("a value");
    char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      CAIRN_ASSIGN_OR_RETURN(NodePtr inner, Or());
      if (!Sym(")")) return Error("')'");
      return inner;
    }
    if (c == '"' || c == '\'') return StringLiteral(c);
    if (c == '`') {
      size_t end = s_.find('`', pos_ + 1);
      if (end == std::string_view::npos) return Error("a closing '`'");
      auto n = Make(Kind::kField, std::string(s_.substr(pos_ + 1, end - pos_ - 1)), {});
      pos_ = end + 1;
      return n;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return Number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '.'))
        ++pos_;
      std::string name(s_.substr(start, pos_ - start));
      if (name == "true" || name == "false") {
        auto n = Make(Kind::kLiteral, "", {});
        std::const_pointer_cast<Expr::Node>(n)->literal = name == "true";
        return n;
      }
      if (name == "null") return Make(Kind::kLiteral, "", {});
      Skip();
      if (pos_ < s_.size() && s_[pos_] == '(') {
        const FunctionInfo* info = nullptr;
        for (auto& f : kFunctions)
          if (name == f.name) info = &f;
        if (!info) {
          pos_ = start;
          return Error("a known function (abs, round, floor, ceil, sqrt, min, max, lower, upper, len, contains, "
                       "starts_with, ends_with, str, num, coalesce, is_null)");
        }
        ++pos_;
        std::vector<NodePtr> args;
        if (!Sym(")")) {
          do {
            CAIRN_ASSIGN_OR_RETURN(NodePtr a, Or());
            args.push_back(a);
          } while (Sym(","));
          if (!Sym(")")) return Error("',' or ')'");
        }
        int n = static_cast<int>(args.size());
        if (n < info->min_args || (info->max_args >= 0 && n > info->max_args))
          return absl::InvalidArgumentError(
              fmt::format("expression \"{}\": {}() takes {} argument(s), got {}", s_, name,
                          info->max_args < 0 ? fmt::format("at least {}", info->min_args)
                                             : std::to_string(info->min_args),
                          n));
        return Make(Kind::kCall, name, std::move(args));
      }
      return Make(Kind::kField, name, {});
    }
    return Error("a value");
  }
  absl::StatusOr<NodePtr> StringLiteral(char quote) {
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out.push_back(s_[pos_++]);
    }
    if (pos_ >= s_.size()) return Error(fmt::format("a closing {}", quote));
    ++pos_;
    auto n = Make(Kind::kLiteral, "", {});
    std::const_pointer_cast<Expr::Node>(n)->literal = std::move(out);
    return n;
  }
  absl::StatusOr<NodePtr> Number() {
    size_t start = pos_;
    bool is_double = false;
    while (pos_ < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.' || s_[pos_] == 'e' ||
            s_[pos_] == 'E' ||
            ((s_[pos_] == '-' || s_[pos_] == '+') && (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E')))) {
      if (!std::isdigit(static_cast<unsigned char>(s_[pos_]))) is_double = true;
      ++pos_;
    }
    std::string_view t = s_.substr(start, pos_ - start);
    auto n = Make(Kind::kLiteral, "", {});
    auto* mut = std::const_pointer_cast<Expr::Node>(n).get();
    if (!is_double) {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc() && p == t.data() + t.size()) {
        mut->literal = v;
        return n;
      }
    }
    double d = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec != std::errc() || p != t.data() + t.size()) {
      pos_ = start;
      return Error("a number");
    }
    mut->literal = d;
    return n;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<Expr> Expr::Parse(std::string_view text) {
  Parser p(text);
  CAIRN_ASSIGN_OR_RETURN(NodePtr root, p.ParseAll());
  Expr e;
  e.root_ = std::move(root);
  e.text_ = std::string(text);
  return e;
}

Value Expr::Eval(const Row& row) const { return root_ ? EvalNode(*root_, row) : Value{}; }

const std::string& Expr::field() const {
  static const std::string kEmpty;
  return root_ && root_->kind == Kind::kField ? root_->name : kEmpty;
}

bool Expr::Truthy(const Value& v) {
  switch (v.index()) {
    case 0:
      return false;
    case 1:
      return std::get<bool>(v);
    case 2:
      return std::get<int64_t>(v) != 0;
    case 3:
      return std::get<double>(v) != 0.0;
    default:
      return !std::get<std::string>(v).empty();
  }
}

}  // namespace cairn::pipeline
