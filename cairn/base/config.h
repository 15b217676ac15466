// cairn/base/config.h — YAML configuration with errors that name the key.
//
// A Config is a view of one YAML mapping plus the dotted path that leads to it,
// so every error reads like
//   node.yaml: key 'server.port' (line 3): expected an integer, got "http"
// Keys may be dotted ("server.port") to reach into nested mappings.
// Config values are immutable; copies are cheap (they share the parsed tree) and
// safe to read from several threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace cairn {

class Config {
 public:
  // Parses a YAML file; the error names the file, line and what the parser said.
  static absl::StatusOr<Config> LoadFile(const std::string& path);
  // Parses YAML text; `source` names it in errors.
  static absl::StatusOr<Config> Parse(std::string_view text, std::string source = "<config>");

  bool Has(std::string_view key) const;

  // The value at `key`, converted to T (bool, integers, double, std::string,
  // std::vector<std::string>). NotFound if absent, InvalidArgument if the value
  // has the wrong type; both messages name the full key and its line.
  template <typename T>
  absl::StatusOr<T> Get(std::string_view key) const;

  // Like Get, but returns `fallback` when the key is absent (a wrongly typed
  // value is still an error: a typo in a value must not silently fall back).
  template <typename T>
  absl::StatusOr<T> GetOr(std::string_view key, T fallback) const {
    if (!Has(key)) return fallback;
    return Get<T>(key);
  }

  // The mapping at `key` as a Config of its own.
  absl::StatusOr<Config> Child(std::string_view key) const;

  // The list at `key`, each element a mapping (errors name "key[i]" and its line).
  absl::StatusOr<std::vector<Config>> Items(std::string_view key) const;
  // Line (1-based) of the value at `key` ("" = this mapping), 0 when absent.
  int Line(std::string_view key = "") const;
  // Keys of this mapping, in document order.
  std::vector<std::string> Keys() const;
  // "file: key 'a.b' (line N)" for messages about a value this Config holds.
  std::string Describe(std::string_view key) const { return Where(key, Find(key)); }

  // Errors with the first key of this mapping not in `allowed`, so that a
  // misspelt option is reported instead of ignored.
  absl::Status CheckKnownKeys(std::initializer_list<std::string_view> allowed) const;

  // Dotted path of this mapping from the document root ("" at the root).
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }
  const YAML::Node& node() const { return node_; }

 private:
  Config(YAML::Node node, std::string source, std::string path)
      : node_(std::move(node)), source_(std::move(source)), path_(std::move(path)) {}

  // Walks a dotted key; returns an undefined node when a component is missing.
  YAML::Node Find(std::string_view key) const;
  std::string FullKey(std::string_view key) const;
  std::string Where(std::string_view key, const YAML::Node& n) const;
  static std::string TypeName(const YAML::Node& n);
  template <typename T>
  static const char* Expected();

  YAML::Node node_;
  std::string source_;
  std::string path_;
};

template <typename T>
const char* Config::Expected() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
  else return "a value of another type";
}

template <typename T>
absl::StatusOr<T> Config::Get(std::string_view key) const {
  YAML::Node n = Find(key);
  if (!n.IsDefined() || n.IsNull()) {
    return absl::NotFoundError(absl::StrCat(source_, ": missing required key '", FullKey(key), "'"));
  }
  bool scalar_wanted = !std::is_same_v<T, std::vector<std::string>>;
  if (scalar_wanted != n.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(key, n), ": expected ", Expected<T>(),
                                                   ", got ", TypeName(n)));
  }
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    return absl::InvalidArgumentError(absl::StrCat(Where(key, n), ": expected ", Expected<T>(),
                                                   ", got \"", n.IsScalar() ? n.Scalar() : "", "\""));
  }
}

}  // namespace cairn
