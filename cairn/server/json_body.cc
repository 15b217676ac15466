#include "cairn/server/json_body.h"

#include <cmath>
#include <limits>

#include "fmt/format.h"
#include "fmt/ranges.h"

namespace cairn::server {

using nlohmann::json;

int JsonNestingDepth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > limit) return limit + 1;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

absl::StatusOr<json> ParseJson(std::string_view body) {
  size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return absl::InvalidArgumentError("the request body is empty; send a JSON object");
  if (JsonNestingDepth(body, kMaxJsonDepth) > kMaxJsonDepth)
    return absl::InvalidArgumentError(
        fmt::format("the request body nests arrays/objects deeper than {} levels", kMaxJsonDepth));
  // The parser reports errors by exception; this is the boundary where they
  // become a Status. Its messages carry the byte position of the problem.
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." → drop the tag.
    if (size_t tag_end = what.find("] "); what.rfind("[json.exception", 0) == 0 && tag_end != std::string::npos)
      what = what.substr(tag_end + 2);
    return absl::InvalidArgumentError(fmt::format("the request body is not valid JSON: {}", what));
  }
}

absl::StatusOr<json> ParseJsonObject(std::string_view body) {
  absl::StatusOr<json> parsed = ParseJson(body);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object())
    return absl::InvalidArgumentError(
        fmt::format("the request body must be a JSON object, got {}", DescribeType(*parsed)));
  return parsed;
}

std::string DescribeType(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return fmt::format("the integer {}", v.dump());
    case json::value_t::number_float: return fmt::format("the number {}", v.dump());
    default: return "an unsupported value";
  }
}

absl::Status WrongType(std::string_view field, std::string_view what, const json& got) {
  return absl::InvalidArgumentError(fmt::format("'{}' must be {}, got {}", field, what, DescribeType(got)));
}

std::string Child(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string Element(std::string_view parent, size_t index) { return fmt::format("{}[{}]", parent, index); }

const json* Find(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status RejectUnknownFields(const json& obj, std::string_view field,
                                 std::initializer_list<std::string_view> known) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string where = field.empty() ? "the request" : fmt::format("'{}'", field);
      return absl::InvalidArgumentError(
          fmt::format("unknown field '{}' in {}; known fields: {}", Child(field, it.key()), where,
                      fmt::join(known, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AsString(const json& v, std::string_view field) {
  if (!v.is_string()) return WrongType(field, "a string", v);
  return v.get<std::string>();
}

absl::StatusOr<bool> AsBool(const json& v, std::string_view field) {
  if (!v.is_boolean()) return WrongType(field, "true or false", v);
  return v.get<bool>();
}

absl::StatusOr<int64_t> AsInt(const json& v, std::string_view field, int64_t min, int64_t max) {
  std::string what = max == std::numeric_limits<int64_t>::max()
                         ? fmt::format("an integer >= {}", min)
                         : fmt::format("an integer in [{}, {}]", min, max);
  int64_t value = 0;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return WrongType(field, what, v);
    value = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    value = v.get<int64_t>();
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    // 2^63 is the first double past int64's range.
    if (!std::isfinite(d) || d != std::floor(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18)
      return WrongType(field, what, v);
    value = static_cast<int64_t>(d);
  } else {
    return WrongType(field, what, v);
  }
  if (value < min || value > max) return WrongType(field, what, v);
  return value;
}

absl::StatusOr<uint64_t> AsUint64(const json& v, std::string_view field) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d >= 0 && d == std::floor(d) && d < 1.8446744073709552e19) return static_cast<uint64_t>(d);
  }
  return WrongType(field, "an unsigned 64-bit integer", v);
}

absl::StatusOr<double> AsDouble(const json& v, std::string_view field, double min, double max) {
  if (!v.is_number()) return WrongType(field, fmt::format("a number in [{}, {}]", min, max), v);
  double d = v.get<double>();
  if (!std::isfinite(d) || d < min || d > max) return WrongType(field, fmt::format("a number in [{}, {}]", min, max), v);
  return d;
}

absl::StatusOr<std::vector<float>> AsFloatVector(const json& v, std::string_view field) {
  if (!v.is_array()) return WrongType(field, "an array of numbers", v);
  std::vector<float> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    if (!e.is_number()) return WrongType(Element(field, i), "a number", e);
    float f = static_cast<float>(e.get<double>());
    if (!std::isfinite(f)) return WrongType(Element(field, i), "a finite float32 number", e);
    out.push_back(f);
  }
  return out;
}

absl::StatusOr<std::string> RequiredString(const json& obj, std::string_view parent, std::string_view key) {
  const json* v = Find(obj, key);
  if (!v) return absl::InvalidArgumentError(fmt::format("'{}' is required", Child(parent, key)));
  return AsString(*v, Child(parent, key));
}

absl::StatusOr<int64_t> RequiredInt(const json& obj, std::string_view parent, std::string_view key, int64_t min,
                                    int64_t max) {
  const json* v = Find(obj, key);
  if (!v) return absl::InvalidArgumentError(fmt::format("'{}' is required", Child(parent, key)));
  return AsInt(*v, Child(parent, key), min, max);
}

}  // namespace cairn::server
