// cairn/server/json_body.h — reading JSON request bodies with errors that name the field.
//
// Every function returns InvalidArgument (→ HTTP 400) with a message that says
// which field was wrong and why, e.g. "'points[3].vector[7]' must be a number,
// got a string". `field` arguments are the field's full path as the client
// wrote it; the helpers below never throw.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cairn::server {

// Deeper nesting is refused before parsing: nothing in the API needs it, and
// code that walks JSON recursively (dump, attribute conversion) stays safe.
inline constexpr int kMaxJsonDepth = 32;

// Parses `body` as a JSON value (any type). Errors: empty body, nesting deeper
// than kMaxJsonDepth, malformed JSON (the message carries the parser's position).
absl::StatusOr<nlohmann::json> ParseJson(std::string_view body);
// ParseJson, and the value must be an object.
absl::StatusOr<nlohmann::json> ParseJsonObject(std::string_view body);

// The nesting depth of arrays and objects in `text` (strings skipped), without
// parsing; stops counting past `limit` and returns limit + 1.
int JsonNestingDepth(std::string_view text, int limit);

// "'<field>' must be <what>, got <a string|a number|...>".
absl::Status WrongType(std::string_view field, std::string_view what, const nlohmann::json& got);
// "a string", "an array", "null", ...
std::string DescribeType(const nlohmann::json& v);
// Joins a field path: Child("points[3]", "vector") = "points[3].vector"; Child("", "k") = "k".
std::string Child(std::string_view parent, std::string_view key);
// Element(points, 3) = "points[3]".
std::string Element(std::string_view parent, size_t index);

// The member `key` of `obj`, or nullptr when it is absent or JSON null
// (optional fields treat null as absent). `obj` must be an object.
const nlohmann::json* Find(const nlohmann::json& obj, std::string_view key);

// Refuses members other than `known` (catches typos such as "vectors").
absl::Status RejectUnknownFields(const nlohmann::json& obj, std::string_view field,
                                 std::initializer_list<std::string_view> known);

absl::StatusOr<std::string> AsString(const nlohmann::json& v, std::string_view field);
absl::StatusOr<bool> AsBool(const nlohmann::json& v, std::string_view field);
// Integers: JSON integers, or numbers with an integral value (128.0), within [min, max].
absl::StatusOr<int64_t> AsInt(const nlohmann::json& v, std::string_view field, int64_t min, int64_t max);
absl::StatusOr<uint64_t> AsUint64(const nlohmann::json& v, std::string_view field);
// Any finite number within [min, max].
absl::StatusOr<double> AsDouble(const nlohmann::json& v, std::string_view field, double min, double max);
// An array of numbers that are finite as float32 (values too large for a
// float are refused, naming the element).
absl::StatusOr<std::vector<float>> AsFloatVector(const nlohmann::json& v, std::string_view field);

// Required members: the same, with "'<field>' is required" when absent or null.
absl::StatusOr<std::string> RequiredString(const nlohmann::json& obj, std::string_view parent, std::string_view key);
absl::StatusOr<int64_t> RequiredInt(const nlohmann::json& obj, std::string_view parent, std::string_view key,
                                    int64_t min, int64_t max);

}  // namespace cairn::server
