#include "cairn/vector/filter.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"

namespace cairn::vector {
namespace {

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxStringBytes = 1 << 16;
constexpr size_t kMaxTags = 1024;

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

enum AttrType : uint8_t { kInt = 1, kDouble = 2, kString = 3, kTags = 4 };

// Numbers compare as doubles, but an int64 attribute equals a predicate number only
// when the number is integral and converts exactly (so 2^53+1 does not equal 2^53).
bool NumberEquals(const AttributeValue& v, double x) {
  if (const auto* i = std::get_if<int64_t>(&v)) {
    return static_cast<double>(*i) == x && std::trunc(x) == x &&
           x >= -9.2233720368547758e18 && x < 9.2233720368547758e18 &&
           static_cast<int64_t>(x) == *i;
  }
  if (const auto* d = std::get_if<double>(&v)) return *d == x;
  return false;
}

std::optional<double> AsNumber(const AttributeValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

bool ScalarEquals(const AttributeValue& v, const Predicate::Scalar& s) {
  if (const auto* x = std::get_if<double>(&s)) return NumberEquals(v, *x);
  const auto& str = std::get<std::string>(s);
  if (const auto* vs = std::get_if<std::string>(&v)) return *vs == str;
  return false;
}

template <typename T>
bool InRange(const T& v, const std::optional<Predicate::Bound>& lo,
             const std::optional<Predicate::Bound>& hi) {
  if (lo) {
    const T& b = std::get<T>(lo->value);
    if (lo->inclusive ? !(v >= b) : !(v > b)) return false;
  }
  if (hi) {
    const T& b = std::get<T>(hi->value);
    if (hi->inclusive ? !(v <= b) : !(v < b)) return false;
  }
  return true;
}

bool RangeIsNumeric(const Predicate& p) {
  const auto& b = p.lower ? p.lower : p.upper;
  return std::holds_alternative<double>(b->value);
}

absl::StatusOr<Predicate::Scalar> ScalarFromJson(const nlohmann::json& j, const std::string& path,
                                                 std::string_view key) {
  if (j.is_number()) {
    double d = j.get<double>();
    if (!std::isfinite(d)) {
      return absl::InvalidArgumentError(fmt::format("{}: '{}' is not a finite number", path, key));
    }
    return Predicate::Scalar(d);
  }
  if (j.is_string()) return Predicate::Scalar(j.get<std::string>());
  return absl::InvalidArgumentError(
      fmt::format("{}: '{}' needs a number or a string, got {}", path, key, j.type_name()));
}

absl::StatusOr<Predicate> ParseNode(const nlohmann::json& j, const std::string& path, int depth) {
  if (depth > 64) return absl::InvalidArgumentError(fmt::format("{}: nested too deeply", path));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: a filter must be a JSON object, got {}", path, j.type_name()));
  }
  Predicate p;
  for (const char* logical : {"and", "or"}) {
    if (!j.contains(logical)) continue;
    if (j.size() != 1) {
      return absl::InvalidArgumentError(
          fmt::format("{}: '{}' must be the only key of its object", path, logical));
    }
    const auto& arr = j.at(logical);
    if (!arr.is_array() || arr.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: '{}' needs a non-empty array of filters", path, logical));
    }
    p.op = std::string_view(logical) == "and" ? Predicate::Op::kAnd : Predicate::Op::kOr;
    for (size_t i = 0; i < arr.size(); ++i) {
      auto child = ParseNode(arr[i], fmt::format("{}.{}[{}]", path, logical, i), depth + 1);
      if (!child.ok()) return child.status();
      p.children.push_back(std::move(*child));
    }
    return p;
  }
  if (j.contains("not")) {
    if (j.size() != 1) {
      return absl::InvalidArgumentError(fmt::format("{}: 'not' must be the only key of its object", path));
    }
    p.op = Predicate::Op::kNot;
    auto child = ParseNode(j.at("not"), path + ".not", depth + 1);
    if (!child.ok()) return child.status();
    p.children.push_back(std::move(*child));
    return p;
  }
  if (!j.contains("field") || !j.at("field").is_string()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: expected 'and', 'or', 'not', or 'field' (a string) with one of eq, ne, in, "
        "contains, gt, gte, lt, lte",
        path));
  }
  p.field = j.at("field").get<std::string>();
  if (!ValidName(p.field)) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: field name '{}' must be 1..128 characters of [A-Za-z0-9_.-]", path, p.field));
  }
  int kinds = 0;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "field") continue;
    if (key == "eq" || key == "ne" || key == "contains") {
      ++kinds;
      p.op = key == "eq" ? Predicate::Op::kEq : key == "ne" ? Predicate::Op::kNe : Predicate::Op::kContains;
      auto s = ScalarFromJson(it.value(), path, key);
      if (!s.ok()) return s.status();
      if (p.op == Predicate::Op::kContains && !std::holds_alternative<std::string>(*s)) {
        return absl::InvalidArgumentError(fmt::format("{}: 'contains' needs a string", path));
      }
      p.values.push_back(std::move(*s));
    } else if (key == "in") {
      ++kinds;
      p.op = Predicate::Op::kIn;
      if (!it.value().is_array()) {
        return absl::InvalidArgumentError(fmt::format("{}: 'in' needs an array", path));
      }
      for (const auto& v : it.value()) {
        auto s = ScalarFromJson(v, path, key);
        if (!s.ok()) return s.status();
        p.values.push_back(std::move(*s));
      }
    } else if (key == "gt" || key == "gte" || key == "lt" || key == "lte") {
      p.op = Predicate::Op::kRange;
      auto s = ScalarFromJson(it.value(), path, key);
      if (!s.ok()) return s.status();
      Predicate::Bound b{std::move(*s), key.size() == 3};
      auto& slot = key[0] == 'g' ? p.lower : p.upper;
      if (slot) {
        return absl::InvalidArgumentError(
            fmt::format("{}: two {} bounds in one range", path, key[0] == 'g' ? "lower" : "upper"));
      }
      slot = std::move(b);
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "{}: unknown key '{}' (expected eq, ne, in, contains, gt, gte, lt, lte)", path, key));
    }
  }
  if (p.lower || p.upper) ++kinds;
  if (kinds != 1) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: field '{}' needs exactly one of eq, ne, in, contains or a range (gt/gte/lt/lte)", path,
        p.field));
  }
  if (p.lower && p.upper && p.lower->value.index() != p.upper->value.index()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: range bounds must both be numbers or both strings", path));
  }
  return p;
}

}  // namespace

absl::Status ValidateAttributes(const Attributes& attributes) {
  for (const auto& [name, value] : attributes) {
    if (!ValidName(name)) {
      return absl::InvalidArgumentError(
          fmt::format("attribute name '{}' must be 1..128 characters of [A-Za-z0-9_.-]", name));
    }
    if (const auto* d = std::get_if<double>(&value); d && !std::isfinite(*d)) {
      return absl::InvalidArgumentError(fmt::format("attribute '{}' is not a finite number", name));
    }
    if (const auto* s = std::get_if<std::string>(&value); s && s->size() > kMaxStringBytes) {
      return absl::InvalidArgumentError(
          fmt::format("attribute '{}' has {} bytes; the limit is {}", name, s->size(), kMaxStringBytes));
    }
    if (const auto* t = std::get_if<Tags>(&value)) {
      if (t->size() > kMaxTags) {
        return absl::InvalidArgumentError(
            fmt::format("attribute '{}' has {} tags; the limit is {}", name, t->size(), kMaxTags));
      }
      for (const auto& tag : *t) {
        if (tag.size() > kMaxStringBytes) {
          return absl::InvalidArgumentError(fmt::format("attribute '{}' has a tag over {} bytes", name,
                                                        kMaxStringBytes));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Attributes> AttributesFromJson(const nlohmann::json& object) {
  Attributes out;
  if (object.is_null()) return out;
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("attributes must be a JSON object, got {}", object.type_name()));
  }
  for (auto it = object.begin(); it != object.end(); ++it) {
    const auto& v = it.value();
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return absl::InvalidArgumentError(fmt::format("attribute '{}' does not fit int64", it.key()));
      }
      out.emplace(it.key(), v.get<int64_t>());
    } else if (v.is_number()) {
      out.emplace(it.key(), v.get<double>());
    } else if (v.is_string()) {
      out.emplace(it.key(), v.get<std::string>());
    } else if (v.is_array()) {
      Tags tags;
      for (const auto& e : v) {
        if (!e.is_string()) {
          return absl::InvalidArgumentError(fmt::format(
              "attribute '{}': a list must hold only strings (tags), found {}", it.key(), e.type_name()));
        }
        tags.push_back(e.get<std::string>());
      }
      out.emplace(it.key(), std::move(tags));
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "attribute '{}' is {}; expected an integer, number, string or list of strings", it.key(),
          v.type_name()));
    }
  }
  auto st = ValidateAttributes(out);
  if (!st.ok()) return st;
  return out;
}

nlohmann::json AttributesToJson(const Attributes& attributes) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& entry : attributes) {
    const std::string& name = entry.first;
    std::visit([&](const auto& v) { j[name] = v; }, entry.second);
  }
  return j;
}

void EncodeAttributes(const Attributes& attributes, ByteWriter* out) {
  out->Varint(attributes.size());
  for (const auto& [name, value] : attributes) {
    out->String(name);
    if (const auto* i = std::get_if<int64_t>(&value)) {
      out->U8(kInt);
      out->I64(*i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      out->U8(kDouble);
      out->F64(*d);
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      out->U8(kString);
      out->String(*s);
    } else {
      const auto& tags = std::get<Tags>(value);
      out->U8(kTags);
      out->Varint(tags.size());
      for (const auto& t : tags) out->String(t);
    }
  }
}

Attributes DecodeAttributes(ByteReader* in) {
  Attributes out;
  uint64_t n = in->Varint();
  // Each attribute needs at least 3 bytes, so a corrupt count fails before looping long.
  if (in->ok() && n > in->remaining() / 3) in->Fail(fmt::format("attribute count {} too large", n));
  for (uint64_t i = 0; i < n && in->ok(); ++i) {
    std::string name(in->String());
    uint8_t type = in->U8();
    AttributeValue value;
    switch (type) {
      case kInt: value = in->I64(); break;
      case kDouble: value = in->F64(); break;
      case kString: value = std::string(in->String()); break;
      case kTags: {
        uint64_t count = in->Varint();
        if (in->ok() && count > in->remaining()) {
          in->Fail(fmt::format("tag count {} too large", count));
          break;
        }
        Tags tags;
        for (uint64_t t = 0; t < count && in->ok(); ++t) tags.emplace_back(in->String());
        value = std::move(tags);
        break;
      }
      default:
        in->Fail(fmt::format("unknown attribute type {}", type));
    }
    if (!in->ok()) break;
    if (!out.emplace(std::move(name), std::move(value)).second) {
      in->Fail("duplicate attribute name");
    }
  }
  return out;
}

bool Predicate::Matches(const Attributes& attributes) const {
  switch (op) {
    case Op::kAnd:
      for (const auto& c : children) {
        if (!c.Matches(attributes)) return false;
      }
      return true;
    case Op::kOr:
      for (const auto& c : children) {
        if (c.Matches(attributes)) return true;
      }
      return false;
    case Op::kNot:
      return !children[0].Matches(attributes);
    default:
      break;
  }
  auto it = attributes.find(field);
  if (it == attributes.end()) return op == Op::kNe;
  const AttributeValue& v = it->second;
  switch (op) {
    case Op::kEq: return ScalarEquals(v, values[0]);
    case Op::kNe: return !ScalarEquals(v, values[0]);
    case Op::kIn:
      for (const auto& s : values) {
        if (ScalarEquals(v, s)) return true;
      }
      return false;
    case Op::kContains: {
      const auto& s = std::get<std::string>(values[0]);
      if (const auto* tags = std::get_if<Tags>(&v)) {
        return std::find(tags->begin(), tags->end(), s) != tags->end();
      }
      if (const auto* str = std::get_if<std::string>(&v)) return *str == s;
      return false;
    }
    case Op::kRange:
      if (RangeIsNumeric(*this)) {
        auto x = AsNumber(v);
        return x && InRange<double>(*x, lower, upper);
      }
      if (const auto* str = std::get_if<std::string>(&v)) return InRange<std::string>(*str, lower, upper);
      return false;
    default:
      return false;
  }
}

absl::StatusOr<Predicate> ParseFilter(const nlohmann::json& filter) {
  return ParseNode(filter, "filter", 0);
}

absl::StatusOr<Predicate> ParseFilter(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("filter: not valid JSON");
  return ParseFilter(j);
}

// ---------------------------------------------------------------------------------
// AttributeIndex

void AttributeIndex::IndexValue(const std::string& field, const AttributeValue& value, uint64_t id,
                                bool add) {
  FieldIndex& f = fields_[field];
  auto apply = [&](auto& set, auto key) {
    if (add) {
      set.emplace(std::move(key), id);
    } else {
      set.erase({std::move(key), id});
    }
  };
  if (auto x = AsNumber(value)) {
    apply(f.numbers, *x);
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    apply(f.strings, *s);
  } else {
    for (const auto& t : std::get<Tags>(value)) apply(f.strings, t);
  }
}

void AttributeIndex::Put(uint64_t id, Attributes attributes) {
  auto [it, inserted] = points_.try_emplace(id);
  if (!inserted) {
    for (const auto& [name, value] : it->second) IndexValue(name, value, id, false);
  }
  for (const auto& [name, value] : attributes) IndexValue(name, value, id, true);
  it->second = std::move(attributes);
}

namespace {

// Sorts (value, id) entries pushed in ascending id order: a stable LSD radix sort on
// the value's bits (8 bits a pass, passes where every value has the same byte skipped),
// so equal values keep their ids ascending. Several times faster than std::sort on
// pairs, which dominated loading a snapshot's attribute indexes.
void SortNumberEntries(std::vector<std::pair<double, uint64_t>>* entries) {
  auto key = [](double d) {
    if (d == 0) d = 0;  // -0 and +0 are one value
    uint64_t b;
    std::memcpy(&b, &d, 8);
    return (b >> 63) ? ~b : b ^ (uint64_t{1} << 63);
  };
  const size_t n = entries->size();
  std::vector<std::pair<uint64_t, uint32_t>> a(n), b(n);  // (key, index into entries)
  for (size_t i = 0; i < n; ++i) a[i] = {key((*entries)[i].first), static_cast<uint32_t>(i)};
  for (int shift = 0; shift < 64; shift += 8) {
    size_t pos[256] = {};
    for (const auto& x : a) ++pos[(x.first >> shift) & 0xff];
    if (std::find(std::begin(pos), std::end(pos), n) != std::end(pos)) continue;
    size_t sum = 0;
    for (size_t& c : pos) sum += std::exchange(c, sum);
    for (const auto& x : a) b[pos[(x.first >> shift) & 0xff]++] = x;
    a.swap(b);
  }
  std::vector<std::pair<double, uint64_t>> sorted(n);
  for (size_t i = 0; i < n; ++i) sorted[i] = (*entries)[a[i].second];
  entries->swap(sorted);
}

}  // namespace

void AttributeIndex::BulkLoad(std::span<const uint64_t> ids, std::vector<Attributes> attributes) {
  struct Entries {
    std::vector<std::pair<double, uint64_t>> numbers;
    std::vector<std::pair<std::string, uint64_t>> strings;
  };
  absl::flat_hash_map<std::string, Entries> entries;
  points_.reserve(points_.size() + ids.size());
  // Points tend to share their attribute names: the last field looked up is reused.
  // (valid until the next insertion into `entries`, which only a new name makes).
  std::string last_name;
  Entries* last = nullptr;
  for (size_t i = 0; i < ids.size(); ++i) {
    for (const auto& [name, value] : attributes[i]) {
      if (last == nullptr || last_name != name) {
        last = &entries[name];
        last_name = name;
      }
      Entries& e = *last;
      if (auto x = AsNumber(value)) {
        e.numbers.emplace_back(*x, ids[i]);
      } else if (const auto* str = std::get_if<std::string>(&value)) {
        e.strings.emplace_back(*str, ids[i]);
      } else {
        for (const auto& t : std::get<Tags>(value)) e.strings.emplace_back(t, ids[i]);
      }
    }
    points_.emplace(ids[i], std::move(attributes[i]));
  }
  const bool ids_ascending = std::is_sorted(ids.begin(), ids.end()) && ids.size() < UINT32_MAX;
  // Sorted input makes each btree insertion an append at the end hint.
  for (auto& [name, e] : entries) {
    FieldIndex& f = fields_[name];
    if (ids_ascending) {
      SortNumberEntries(&e.numbers);
    } else {
      std::sort(e.numbers.begin(), e.numbers.end());
    }
    std::sort(e.strings.begin(), e.strings.end());
    for (auto& n : e.numbers) f.numbers.insert(f.numbers.end(), n);
    for (auto& str : e.strings) f.strings.insert(f.strings.end(), std::move(str));
  }
}

void AttributeIndex::Erase(uint64_t id) {
  auto it = points_.find(id);
  if (it == points_.end()) return;
  for (const auto& [name, value] : it->second) IndexValue(name, value, id, false);
  points_.erase(it);
}

const Attributes* AttributeIndex::Find(uint64_t id) const {
  auto it = points_.find(id);
  return it == points_.end() ? nullptr : &it->second;
}

namespace {

// Walks the (value, id) entries of a sorted set whose value lies in a range.
template <typename Set, typename T, typename F>
void ForRange(const Set& set, const std::optional<Predicate::Bound>& lo,
              const std::optional<Predicate::Bound>& hi, F&& f) {
  auto it = set.begin();
  if (lo) {
    const T& b = std::get<T>(lo->value);
    it = lo->inclusive ? set.lower_bound({b, 0})
                       : set.upper_bound({b, std::numeric_limits<uint64_t>::max()});
  }
  for (; it != set.end(); ++it) {
    if (hi) {
      const T& b = std::get<T>(hi->value);
      if (hi->inclusive ? it->first > b : it->first >= b) break;
    }
    f(it->second);
  }
}

template <typename Set, typename K, typename F>
void ForEqual(const Set& set, const K& key, F&& f) {
  for (auto it = set.lower_bound({key, 0}); it != set.end() && it->first == key; ++it) f(it->second);
}

}  // namespace

// Leaves answered from the index return a superset of their matches (numbers are
// indexed as doubles; a string value and a tag share one index); Matches() on the
// stored attributes makes the final decision.
std::optional<std::vector<uint64_t>> AttributeIndex::LeafCandidates(const Predicate& p) const {
  std::vector<uint64_t> ids;
  auto fit = fields_.find(p.field);
  if (p.op == Predicate::Op::kNe) return std::nullopt;
  if (fit == fields_.end()) return ids;
  const FieldIndex& f = fit->second;
  auto push = [&](uint64_t id) { ids.push_back(id); };
  auto scalar = [&](const Predicate::Scalar& s) {
    if (const auto* x = std::get_if<double>(&s)) {
      ForEqual(f.numbers, *x, push);
    } else {
      ForEqual(f.strings, std::get<std::string>(s), push);
    }
  };
  switch (p.op) {
    case Predicate::Op::kEq:
    case Predicate::Op::kContains:
      scalar(p.values[0]);
      break;
    case Predicate::Op::kIn:
      for (const auto& s : p.values) scalar(s);
      break;
    case Predicate::Op::kRange:
      if (RangeIsNumeric(p)) {
        ForRange<decltype(f.numbers), double>(f.numbers, p.lower, p.upper, push);
      } else {
        ForRange<decltype(f.strings), std::string>(f.strings, p.lower, p.upper, push);
      }
      break;
    default:
      return std::nullopt;
  }
  return ids;
}

double AttributeIndex::LeafCount(const Predicate& p) const {
  if (p.op == Predicate::Op::kNe) {
    Predicate eq = p;
    eq.op = Predicate::Op::kEq;
    return std::max(0.0, static_cast<double>(points_.size()) - LeafCount(eq));
  }
  auto fit = fields_.find(p.field);
  if (fit == fields_.end()) return 0;
  const FieldIndex& f = fit->second;
  double n = 0;
  auto count = [&](uint64_t) { n += 1; };
  auto scalar = [&](const Predicate::Scalar& s) {
    if (const auto* x = std::get_if<double>(&s)) {
      ForEqual(f.numbers, *x, count);
    } else {
      ForEqual(f.strings, std::get<std::string>(s), count);
    }
  };
  switch (p.op) {
    case Predicate::Op::kEq:
    case Predicate::Op::kContains:
      scalar(p.values[0]);
      break;
    case Predicate::Op::kIn:
      for (const auto& s : p.values) scalar(s);
      break;
    case Predicate::Op::kRange:
      if (RangeIsNumeric(p)) {
        ForRange<decltype(f.numbers), double>(f.numbers, p.lower, p.upper, count);
      } else {
        ForRange<decltype(f.strings), std::string>(f.strings, p.lower, p.upper, count);
      }
      break;
    default:
      break;
  }
  return n;
}

double AttributeIndex::EstimateCount(const Predicate& p) const {
  const double total = static_cast<double>(points_.size());
  if (total == 0) return 0;
  switch (p.op) {
    case Predicate::Op::kAnd: {
      double frac = 1;
      for (const auto& c : p.children) frac *= EstimateCount(c) / total;
      return frac * total;
    }
    case Predicate::Op::kOr: {
      double miss = 1;
      for (const auto& c : p.children) miss *= 1 - EstimateCount(c) / total;
      return (1 - miss) * total;
    }
    case Predicate::Op::kNot:
      return std::max(0.0, total - EstimateCount(p.children[0]));
    default:
      return std::min(total, LeafCount(p));
  }
}

namespace {

void SortUnique(std::vector<uint64_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

}  // namespace

std::vector<uint64_t> AttributeIndex::ListMatching(const Predicate& p) const {
  // Candidates: the smallest indexable conjunct of an "and", the union of an "or" when
  // every child is indexable, a leaf's own index entries; otherwise every point.
  std::function<std::optional<std::vector<uint64_t>>(const Predicate&)> candidates =
      [&](const Predicate& q) -> std::optional<std::vector<uint64_t>> {
    switch (q.op) {
      case Predicate::Op::kAnd: {
        std::optional<std::vector<uint64_t>> best;
        for (const auto& c : q.children) {
          auto cand = candidates(c);
          if (cand && (!best || cand->size() < best->size())) best = std::move(cand);
        }
        return best;
      }
      case Predicate::Op::kOr: {
        std::vector<uint64_t> all;
        for (const auto& c : q.children) {
          auto cand = candidates(c);
          if (!cand) return std::nullopt;
          all.insert(all.end(), cand->begin(), cand->end());
        }
        return all;
      }
      case Predicate::Op::kNot:
        return std::nullopt;
      default:
        return LeafCandidates(q);
    }
  };
  std::vector<uint64_t> out;
  auto cand = candidates(p);
  if (cand) {
    SortUnique(&*cand);
    for (uint64_t id : *cand) {
      const Attributes* a = Find(id);
      if (a && p.Matches(*a)) out.push_back(id);
    }
  } else {
    for (const auto& [id, attrs] : points_) {
      if (p.Matches(attrs)) out.push_back(id);
    }
    std::sort(out.begin(), out.end());
  }
  return out;
}

// The Filter handed to indexes. Allows() looks the point's attributes up and
// evaluates the predicate, or probes a precomputed id set for very selective
// predicates (so the exact-search fallback and graph traversal both stay cheap).
class BoundAttributeFilter final : public Filter {
 public:
  BoundAttributeFilter(const AttributeIndex& index, Predicate predicate, double materialize_fraction)
      : index_(index), predicate_(std::move(predicate)) {
    const double total = static_cast<double>(index.size());
    estimate_ = index.EstimateCount(predicate_);
    if (total > 0 && estimate_ <= materialize_fraction * total) {
      std::vector<uint64_t> ids = index.ListMatching(predicate_);
      allowed_.emplace(ids.begin(), ids.end());
      listed_ = std::move(ids);
      estimate_ = static_cast<double>(listed_->size());
    }
  }
  bool Allows(uint64_t id) const override {
    if (allowed_) return allowed_->contains(id);
    const Attributes* a = index_.Find(id);
    return a != nullptr && predicate_.Matches(*a);
  }
  double EstimatedSelectivity() const override {
    const double total = static_cast<double>(index_.size());
    return total == 0 ? 0 : std::min(1.0, estimate_ / total);
  }
  bool ListAllowed(std::vector<uint64_t>* ids) const override {
    if (listed_) {
      *ids = *listed_;
    } else {
      *ids = index_.ListMatching(predicate_);
    }
    return true;
  }

 private:
  const AttributeIndex& index_;
  Predicate predicate_;
  double estimate_ = 0;
  std::optional<absl::flat_hash_set<uint64_t>> allowed_;
  std::optional<std::vector<uint64_t>> listed_;
};

std::unique_ptr<Filter> AttributeIndex::Bind(const Predicate& predicate,
                                             double materialize_fraction) const {
  return std::make_unique<BoundAttributeFilter>(*this, predicate, materialize_fraction);
}

}  // namespace cairn::vector
