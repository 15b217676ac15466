// cairn/infer/json_schema.h — a JSON Schema compiled into the form the JSON recognizer
// (json_recognizer.h) walks.
//
// Supported keywords (anything else that constrains values is rejected with
// InvalidArgument naming it, so a schema is never enforced only in part):
//   type (a name or an array of names: object, array, string, number, integer,
//   boolean, null), nullable (OpenAPI style), properties, required,
//   additionalProperties (false, true or a schema), enum, const, items (one schema),
//   minItems, maxItems, minLength, maxLength, anyOf and oneOf (both as a union: the
//   output matches at least one alternative), $ref to "#/$defs/NAME",
//   "#/definitions/NAME" or "#" (non-recursive; a recursive reference is rejected).
// Annotations are accepted and have no effect: title, description, default, examples,
// $schema, $id, $comment, deprecated, readOnly, writeOnly, and $defs/definitions.
//
// What is generated is a subset of what the schema admits, chosen so that every
// prefix can still be completed:
//   - an object with declared properties gets them in the order of the schema's
//     "properties" object (nlohmann::json keeps keys sorted, so: by name), each
//     optional one possibly left out, every required one present; no other keys
//     (additionalProperties then only matters for objects that declare none);
//   - a schema without "type" takes the type its keywords imply (properties ->
//     object, items -> array, minLength -> string), or any type when none do;
//   - enum and const values are written exactly as nlohmann::json::dump() prints
//     them (compact), and are not checked against the schema's other keywords;
//   - "integer" is written without fraction or exponent; integers have at most 15
//     digits, fractions at most 16 digits, exponents at most 2, so every number is
//     exact in a double and never overflows;
//   - strings are valid UTF-8 (escapes included); lengths count code points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cairn::infer::json {

// Bits of JsonNode::types.
inline constexpr uint32_t kObject = 1, kArray = 2, kString = 4, kNumber = 8, kInteger = 16, kBoolean = 32,
                          kNull = 64;
inline constexpr uint32_t kAnyType = 127;

struct JsonProperty {
  int32_t key_literal = 0;  // index into JsonGrammar::literals: the quoted key, "\"name\""
  int32_t node = 0;
  bool required = false;
};

struct JsonNode {
  // A union (anyOf/oneOf) when non-empty: the value matches one of these nodes and
  // the fields below are unused.
  std::vector<int32_t> alternatives;
  // enum/const when non-empty: the value is exactly one of these literals.
  std::vector<int32_t> literals;
  uint32_t types = kAnyType;
  // Objects: declared properties, in order (when empty, keys are free and each value
  // matches `additional`; additional < 0 means no keys at all).
  std::vector<JsonProperty> properties;
  std::vector<int32_t> next_required;  // [i]: the first required property >= i, or size()
  int32_t additional = 0;
  // Arrays.
  int32_t items = 0;
  int32_t min_items = 0, max_items = INT32_MAX;
  // Strings, in code points.
  int32_t min_length = 0, max_length = INT32_MAX;
};

struct JsonGrammar {
  std::vector<JsonNode> nodes;  // nodes[0] is "any JSON value"; `root` is where a text starts
  std::vector<std::string> literals;  // literals[0..2]: "true", "false", "null"
  int32_t root = 0;
};

inline constexpr int32_t kLiteralTrue = 0, kLiteralFalse = 1, kLiteralNull = 2;

// The recognizer's stack holds at most this many frames (one per level of
// nesting): deeper free-form values are not generated, and a schema that needs more
// is rejected.
inline constexpr int kMaxFrames = 64;
// The recognizer follows at most this many undecided choices at once; an enum or a
// union with more is rejected. (Choices multiplied by nesting, e.g. a union of
// enums, can still exceed it: the choices beyond it are then never generated.)
inline constexpr size_t kMaxChoices = 64;

// A grammar for any JSON object (response_format json_object).
JsonGrammar AnyObjectGrammar();

// Compiles `schema`; InvalidArgument naming the keyword (and where it is, as a JSON
// pointer) for an unsupported or malformed one, a recursive $ref, an unresolved
// $ref, or a schema that admits nothing (minItems > maxItems, an empty enum, ...).
absl::StatusOr<JsonGrammar> CompileJsonSchema(const nlohmann::json& schema);

}  // namespace cairn::infer::json
