// Point attributes, filter predicates and the per-attribute inverted index that
// answers them.
//
// Attributes: per point a map name -> value, where a value is an int64, a double,
// a string or a list of strings (tags). Names are 1..128 bytes of [A-Za-z0-9_.-].
//
// Filters are JSON objects (ParseFilter):
//   {"field": "kind", "eq": "pump"}              equality (numbers compare numerically,
//                                                 5 == 5.0; strings compare with strings)
//   {"field": "kind", "ne": "pump"}              not equal: also true when the field is absent
//   {"field": "temp", "gte": 50, "lt": 90}       range: any of gt, gte, lt, lte, all numbers
//                                                 or all strings (byte-wise order)
//   {"field": "kind", "in": ["pump", "valve"]}   set membership (numbers or strings)
//   {"field": "tags", "contains": "urgent"}      a tag list holds the string
//                                                 (a plain string attribute equal to it counts too)
//   {"and": [f, ...]}, {"or": [f, ...]}, {"not": f}
// A point lacking the field matches nothing but "ne" (and "not" of something).
// Parse errors name the JSON path of the bad node ("filter.and[1]: 'gte' needs a number
// or a string").
//
// AttributeIndex keeps every point's attributes plus inverted indexes (value -> ids in
// sorted order), so a bound filter reports its selectivity and lists its matching ids
// cheaply: that is what lets an index fall back to exact search for very selective
// filters (index.h Filter).
//
// Thread-safety: Predicate is immutable after parsing. AttributeIndex is not internally
// synchronized: the owner (Collection) serializes writers against readers; a
// BoundFilter reads the index and must not outlive it or overlap a write.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "cairn/base/codec.h"
#include "cairn/vector/index.h"

namespace cairn::vector {

using Tags = std::vector<std::string>;
using AttributeValue = std::variant<int64_t, double, std::string, Tags>;
using Attributes = std::map<std::string, AttributeValue, std::less<>>;

// Checks names (charset, length) and values (finite doubles, string sizes).
absl::Status ValidateAttributes(const Attributes& attributes);

// JSON object <-> attributes. Integers become int64, other numbers double, strings
// string, arrays of strings tags; anything else is an error naming the attribute.
absl::StatusOr<Attributes> AttributesFromJson(const nlohmann::json& object);
nlohmann::json AttributesToJson(const Attributes& attributes);

// Binary form used by the WAL and snapshots.
void EncodeAttributes(const Attributes& attributes, ByteWriter* out);
// Decodes what EncodeAttributes wrote; failures latch in `in` (check in->status()).
Attributes DecodeAttributes(ByteReader* in);

// A parsed filter expression (immutable).
struct Predicate {
  enum class Op : uint8_t { kEq, kNe, kRange, kIn, kContains, kAnd, kOr, kNot };
  // A number (int or double, compared as double after an exact int check) or a string.
  using Scalar = std::variant<double, std::string>;
  struct Bound {
    Scalar value;
    bool inclusive = false;
  };

  Op op = Op::kEq;
  std::string field;                 // leaves
  std::vector<Scalar> values;        // eq/ne/contains: one value; in: the set
  std::optional<Bound> lower, upper; // range
  std::vector<Predicate> children;   // and/or: >= 1; not: exactly 1

  // True when `attributes` satisfies the predicate.
  bool Matches(const Attributes& attributes) const;
};

absl::StatusOr<Predicate> ParseFilter(const nlohmann::json& filter);
absl::StatusOr<Predicate> ParseFilter(std::string_view json_text);

// All points' attributes plus inverted indexes over them.
class AttributeIndex {
 public:
  AttributeIndex() = default;
  AttributeIndex(const AttributeIndex&) = delete;
  AttributeIndex& operator=(const AttributeIndex&) = delete;

  // Sets the point's attributes (replacing earlier ones). Every live point is
  // registered, even with no attributes, so "ne"/"not" can list it.
  void Put(uint64_t id, Attributes attributes);
  // Forgets the point; no-op when absent.
  void Erase(uint64_t id);
  // nullptr when absent. Valid until the next write.
  const Attributes* Find(uint64_t id) const;
  size_t size() const { return points_.size(); }
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [id, attributes] : points_) f(id, attributes);
  }

  // A Filter (index.h) for `predicate` over this index. The predicate is copied.
  // Very selective predicates (at most `materialize_fraction` of the points by
  // estimate) are materialized into an id set at bind time.
  std::unique_ptr<Filter> Bind(const Predicate& predicate,
                               double materialize_fraction = 0.05) const;

  // Estimated number of matching points (exact for single leaves, independence
  // assumptions for and/or).
  double EstimateCount(const Predicate& predicate) const;
  // Exactly the ids that match, ascending.
  std::vector<uint64_t> ListMatching(const Predicate& predicate) const;

 private:
  friend class BoundAttributeFilter;
  struct FieldIndex {
    absl::btree_set<std::pair<double, uint64_t>> numbers;       // int and double values
    absl::btree_set<std::pair<std::string, uint64_t>> strings;  // strings and tag elements
  };
  void IndexValue(const std::string& field, const AttributeValue& value, uint64_t id, bool add);
  // Candidate ids for a leaf (a superset of the matches, exact for most leaves), or
  // nullopt when the leaf cannot be answered from the index (ne).
  std::optional<std::vector<uint64_t>> LeafCandidates(const Predicate& leaf) const;
  double LeafCount(const Predicate& leaf) const;

  absl::flat_hash_map<uint64_t, Attributes> points_;
  absl::flat_hash_map<std::string, FieldIndex> fields_;
};

}  // namespace cairn::vector
