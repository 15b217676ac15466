// Entity and fact extraction from episode text.
//
// Extractor is the interface the write path calls once per episode ("single pass": entities
// and facts together). RuleExtractor is the built-in one and needs no model:
//   entities  capitalized word runs (not a lone sentence-initial common word), names the
//             store already knows (ExtractContext::is_known_alias, case-insensitive), and typed
//             patterns: e-mail addresses, URLs, dates ("8 May 2023", "May 8, 2023",
//             "2023-05-08"), organizations (a run ending in Inc, Corp, University, ...).
//   facts     per sentence: "<S> is a/an/the <O>" (is), "works at/for <O>" (works_at), "lives in"
//             (lives_in), "moved to" (lives_in), "likes/loves/enjoys <O>" (likes), "is married
//             to <O>" (married_to), "was born in <O>" (born_in). S is a capitalized name or
//             "I"/"my" (the context's speaker). Negations ("does not", "doesn't", "no longer",
//             "never", "is not") set `negated`: the store closes a matching current fact.
// A model-backed extractor (a local model through cairn/infer with JSON-constrained output)
// can implement the same interface; it is not built yet.
// Thread-safety: Extract is const and thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::memory {

struct ExtractedEntity {
  std::string name;  // as written (trimmed)
  std::string type;  // "person", "organization", "place", "date", "email", "url", "thing"
};

struct ExtractedFact {
  std::string subject;        // an entity name
  std::string predicate;      // lower_snake_case
  std::string object;         // an entity name or a literal
  bool object_is_entity = false;
  bool negated = false;       // "X does not work at Y"
  double confidence = 0.6;
};

struct Extraction {
  std::vector<ExtractedEntity> entities;  // distinct by lower-cased name, first seen first
  std::vector<ExtractedFact> facts;
};

struct ExtractContext {
  std::string speaker;  // who "I"/"my"/"me" refer to; empty = first-person sentences give no facts
  // True when the lower-cased text names an entity the store knows (may be empty).
  std::function<bool(const std::string& lower)> is_known_alias;
};

class Extractor {
 public:
  virtual ~Extractor() = default;
  virtual std::string_view name() const = 0;
  virtual absl::StatusOr<Extraction> Extract(std::string_view text, const ExtractContext& context) const = 0;
};

class RuleExtractor final : public Extractor {
 public:
  std::string_view name() const override { return "rules"; }
  absl::StatusOr<Extraction> Extract(std::string_view text, const ExtractContext& context) const override;
};

// Predicates that hold one value at a time for a subject (a new object replaces the old):
// works_at, lives_in, married_to, born_in, age.
bool IsSingleValued(std::string_view predicate);

// Lower-case ASCII copy with runs of whitespace collapsed and edges trimmed: the key under
// which names and aliases are matched.
std::string NormalizeName(std::string_view name);

}  // namespace cairn::memory
