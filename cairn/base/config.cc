#include "cairn/base/config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace cairn {

absl::StatusOr<Config> Config::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open config file '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

absl::StatusOr<Config> Config::Parse(std::string_view text, std::string source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": line ", e.mark.line + 1, ", column ",
                                                   e.mark.column + 1, ": ", e.msg));
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the top level must be a mapping of keys to values"));
  }
  return Config(root, std::move(source), "");
}

YAML::Node Config::Find(std::string_view key) const {
  YAML::Node cur = node_;
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    if (dot == std::string_view::npos) dot = key.size();
    std::string part(key.substr(start, dot - start));
    start = dot + 1;
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node next = cur[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(next);
  }
  return cur;
}

bool Config::Has(std::string_view key) const {
  YAML::Node n = Find(key);
  return n.IsDefined() && !n.IsNull();
}

std::string Config::FullKey(std::string_view key) const {
  return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", std::string(key));
}

std::string Config::Where(std::string_view key, const YAML::Node& n) const {
  return absl::StrCat(source_, ": key '", FullKey(key), "' (line ", n.Mark().line + 1, ")");
}

std::string Config::TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return absl::StrCat("\"", n.Scalar(), "\"");
    default: return "nothing";
  }
}

absl::StatusOr<Config> Config::Child(std::string_view key) const {
  YAML::Node n = Find(key);
  if (!n.IsDefined() || n.IsNull()) {
    return absl::NotFoundError(absl::StrCat(source_, ": missing required key '", FullKey(key), "'"));
  }
  if (!n.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(key, n), ": expected a mapping, got ", TypeName(n)));
  }
  return Config(n, source_, FullKey(key));
}

absl::StatusOr<std::vector<Config>> Config::Items(std::string_view key) const {
  YAML::Node n = Find(key);
  if (!n.IsDefined() || n.IsNull()) {
    return absl::NotFoundError(absl::StrCat(source_, ": missing required key '", FullKey(key), "'"));
  }
  if (!n.IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(key, n), ": expected a list, got ", TypeName(n)));
  }
  std::vector<Config> out;
  for (size_t i = 0; i < n.size(); ++i) {
    YAML::Node item = n[i];
    std::string path = absl::StrCat(FullKey(key), "[", i, "]");
    if (!item.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(source_, ": key '", path, "' (line ", item.Mark().line + 1,
                                                     "): expected a mapping, got ", TypeName(item)));
    }
    out.push_back(Config(item, source_, path));
  }
  return out;
}

int Config::Line(std::string_view key) const {
  YAML::Node n = key.empty() ? node_ : Find(key);
  return n.IsDefined() ? n.Mark().line + 1 : 0;
}

std::vector<std::string> Config::Keys() const {
  std::vector<std::string> keys;
  if (!node_.IsMap()) return keys;
  for (const auto& kv : node_) keys.push_back(kv.first.as<std::string>());
  return keys;
}

absl::Status Config::CheckKnownKeys(std::initializer_list<std::string_view> allowed) const {
  for (const auto& kv : node_) {
    std::string k = kv.first.as<std::string>();
    bool known = false;
    for (std::string_view a : allowed) known = known || a == k;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", std::string(a));
      return absl::InvalidArgumentError(absl::StrCat(source_, ": unknown key '", FullKey(k),
                                                     "' (line ", kv.first.Mark().line + 1,
                                                     "); known keys here: ", list));
    }
  }
  return absl::OkStatus();
}

}  // namespace cairn
