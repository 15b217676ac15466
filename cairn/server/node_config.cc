#include "cairn/server/node_config.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cairn/base/config.h"
#include "cairn/base/status.h"
#include "cairn/server/collections_api.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace cairn::server {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// "file: key 'models[1]' (line 7)" for an item of a list, which Describe cannot name.
std::string Where(const Config& c) { return fmt::format("{}: key '{}' (line {})", c.source(), c.path(), c.Line()); }

absl::Status Bad(const Config& c, std::string_view key, std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe(key), what));
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  fs::path p(path);
  if (p.is_absolute() || base_dir.empty()) return p.lexically_normal().string();
  return (fs::path(base_dir) / p).lexically_normal().string();
}

absl::StatusOr<std::string> ExistingFile(const Config& c, std::string_view key, const std::string& base_dir) {
  CAIRN_ASSIGN_OR_RETURN(std::string path, c.Get<std::string>(key));
  if (path.empty()) return Bad(c, key, "is empty");
  std::string resolved = Resolve(base_dir, path);
  std::error_code ec;
  if (!fs::is_regular_file(resolved, ec)) return Bad(c, key, fmt::format("no such file '{}'", resolved));
  return resolved;
}

absl::StatusOr<int> IntInRange(const Config& c, std::string_view key, int fallback, int lo, int hi) {
  CAIRN_ASSIGN_OR_RETURN(int64_t v, c.GetOr<int64_t>(key, fallback));
  if (v < lo || v > hi) return Bad(c, key, fmt::format("must be in {}..{}, got {}", lo, hi, v));
  return static_cast<int>(v);
}

// YAML scalars carry no type; a plain (unquoted) scalar becomes a JSON integer,
// number, boolean or null when it reads as one, so that the collections API's
// parser sees the types a JSON request would have.
json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : n) out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: a string
      if (s == "true" || s == "false") return s == "true";
      if (s == "null" || s == "~") return nullptr;
      if (!s.empty()) {
        char* end = nullptr;
        errno = 0;
        long long i = std::strtoll(s.c_str(), &end, 10);
        if (*end == '\0' && errno == 0) return static_cast<int64_t>(i);
        double d = std::strtod(s.c_str(), &end);
        if (*end == '\0' && std::isfinite(d)) return d;
      }
      return s;
    }
    default: return nullptr;
  }
}

absl::StatusOr<NodeModelConfig> ParseModel(const Config& c, const std::string& base_dir) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({"name", "path", "slots", "ctx", "queue", "threads", "prefill_chunk",
                                          "timeout_s", "chat_template"}));
  NodeModelConfig m;
  CAIRN_ASSIGN_OR_RETURN(m.path, ExistingFile(c, "path", base_dir));
  CAIRN_ASSIGN_OR_RETURN(m.name, c.GetOr<std::string>("name", fs::path(m.path).stem().string()));
  if (m.name.empty()) return Bad(c, "name", "is empty");
  CAIRN_ASSIGN_OR_RETURN(m.slots, IntInRange(c, "slots", m.slots, 1, 256));
  CAIRN_ASSIGN_OR_RETURN(m.ctx, IntInRange(c, "ctx", m.ctx, 0, 1 << 20));
  CAIRN_ASSIGN_OR_RETURN(m.queue, IntInRange(c, "queue", m.queue, 1, 100000));
  CAIRN_ASSIGN_OR_RETURN(m.threads, IntInRange(c, "threads", m.threads, 0, 1024));
  CAIRN_ASSIGN_OR_RETURN(m.prefill_chunk, IntInRange(c, "prefill_chunk", m.prefill_chunk, 1, 1 << 16));
  CAIRN_ASSIGN_OR_RETURN(m.timeout_s, c.GetOr<double>("timeout_s", m.timeout_s));
  if (!(m.timeout_s > 0) || !std::isfinite(m.timeout_s))
    return Bad(c, "timeout_s", fmt::format("must be a positive number of seconds, got {}", m.timeout_s));
  CAIRN_ASSIGN_OR_RETURN(m.chat_template, c.GetOr<std::string>("chat_template", ""));
  return m;
}

absl::Status AddKeys(const Config& c, std::string_view key, const std::vector<std::string>& keys,
                     std::vector<std::string>* out) {
  for (const std::string& k : keys) {
    if (k.empty()) return Bad(c, key, "holds an empty key");
    for (char ch : k)
      if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
        return Bad(c, key, "holds a key with whitespace or control characters");
    out->push_back(k);
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitKeys(const std::string& text) {
  std::vector<std::string> keys;
  std::string cur;
  for (char ch : text) {
    if (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
      if (!cur.empty()) keys.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) keys.push_back(std::move(cur));
  return keys;
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path, const EnvLookup& env) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("cannot open the config file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  NodeConfig config;
  CAIRN_ASSIGN_OR_RETURN(config, ParseNodeConfig(ss.str(), path, ec ? std::string() : abs.parent_path().string(), env));
  config.source = path;
  return config;
}

absl::StatusOr<NodeConfig> ParseNodeConfig(std::string_view yaml, const std::string& source,
                                           const std::string& base_dir, const EnvLookup& env) {
  CAIRN_ASSIGN_OR_RETURN(Config root, Config::Parse(yaml, source));
  CAIRN_RETURN_IF_ERROR(root.CheckKnownKeys({"listen", "data_dir", "threads", "max_body_mb", "api_keys",
                                             "api_keys_env", "metrics_public", "tls", "models", "collections",
                                             "pipelines"}));
  NodeConfig config;
  if (root.Has("listen")) {
    CAIRN_ASSIGN_OR_RETURN(std::string listen, root.Get<std::string>("listen"));
    config.listen = listen;
  }
  if (root.Has("data_dir")) {
    CAIRN_ASSIGN_OR_RETURN(std::string dir, root.Get<std::string>("data_dir"));
    if (dir.empty()) return Bad(root, "data_dir", "is empty");
    config.data_dir = Resolve(base_dir, dir);
  }
  if (root.Has("threads")) {
    CAIRN_ASSIGN_OR_RETURN(config.threads, IntInRange(root, "threads", 0, 0, 1024));
  }
  if (root.Has("max_body_mb")) {
    CAIRN_ASSIGN_OR_RETURN(int mb, IntInRange(root, "max_body_mb", 64, 1, 4096));
    config.max_body_mb = static_cast<size_t>(mb);
  }
  if (root.Has("api_keys")) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> keys, root.Get<std::vector<std::string>>("api_keys"));
    CAIRN_RETURN_IF_ERROR(AddKeys(root, "api_keys", keys, &config.api_keys));
  }
  if (root.Has("api_keys_env")) {
    CAIRN_ASSIGN_OR_RETURN(std::string var, root.Get<std::string>("api_keys_env"));
    std::optional<std::string> value = env ? env(var) : std::nullopt;
    if (!value) return Bad(root, "api_keys_env", fmt::format("the environment variable '{}' is not set", var));
    std::vector<std::string> keys = SplitKeys(*value);
    if (keys.empty()) return Bad(root, "api_keys_env", fmt::format("the environment variable '{}' holds no key", var));
    CAIRN_RETURN_IF_ERROR(AddKeys(root, "api_keys_env", keys, &config.api_keys));
  }
  CAIRN_ASSIGN_OR_RETURN(config.metrics_public, root.GetOr<bool>("metrics_public", false));
  if (root.Has("tls")) {
    CAIRN_ASSIGN_OR_RETURN(Config tls, root.Child("tls"));
    CAIRN_RETURN_IF_ERROR(tls.CheckKnownKeys({"cert_file", "key_file"}));
    if (!tls.Has("cert_file") || !tls.Has("key_file"))
      return Bad(root, "tls", "needs both cert_file and key_file");
    CAIRN_ASSIGN_OR_RETURN(config.tls_cert_file, ExistingFile(tls, "cert_file", base_dir));
    CAIRN_ASSIGN_OR_RETURN(config.tls_key_file, ExistingFile(tls, "key_file", base_dir));
  }
  if (root.Has("models")) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<Config> items, root.Items("models"));
    for (const Config& item : items) {
      CAIRN_ASSIGN_OR_RETURN(NodeModelConfig m, ParseModel(item, base_dir));
      for (const NodeModelConfig& other : config.models)
        if (other.name == m.name)
          return absl::InvalidArgumentError(fmt::format("{}: a second model named '{}'", Where(item), m.name));
      config.models.push_back(std::move(m));
    }
  }
  if (root.Has("collections")) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<Config> items, root.Items("collections"));
    for (const Config& item : items) {
      // The same fields, and the same checks, as a create request to the collections API.
      absl::StatusOr<vector::CollectionSettings> settings = ParseCreateCollection(YamlToJson(item.node()));
      if (!settings.ok())
        return absl::InvalidArgumentError(fmt::format("{}: {}", Where(item), std::string(settings.status().message())));
      for (const vector::CollectionSettings& other : config.collections)
        if (other.name == settings->name)
          return absl::InvalidArgumentError(
              fmt::format("{}: a second collection named '{}'", Where(item), settings->name));
      config.collections.push_back(std::move(*settings));
    }
  }
  if (root.Has("pipelines")) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> paths, root.Get<std::vector<std::string>>("pipelines"));
    for (size_t i = 0; i < paths.size(); ++i) {
      std::string resolved = Resolve(base_dir, paths[i]);
      std::error_code ec;
      if (!fs::is_regular_file(resolved, ec))
        return Bad(root, "pipelines", fmt::format("item {}: no such file '{}'", i, resolved));
      config.pipelines.push_back(std::move(resolved));
    }
  }
  return config;
}

absl::Status EnsureCollections(vector::CollectionStore& store, std::span<const vector::CollectionSettings> wanted,
                               std::vector<std::string>* created) {
  for (const vector::CollectionSettings& want : wanted) {
    absl::StatusOr<std::shared_ptr<vector::Collection>> have = store.Get(want.name);
    if (have.ok()) {
      const vector::CollectionSettings& s = (*have)->settings();
      if (s.dim != want.dim || s.metric != want.metric)
        return absl::FailedPreconditionError(fmt::format(
            "collection '{}' exists with dim {} and metric {}, but the config asks for dim {} and metric {}", want.name,
            s.dim, std::string(vector::MetricName(s.metric)), want.dim, std::string(vector::MetricName(want.metric))));
      continue;
    }
    if (!absl::IsNotFound(have.status())) return have.status();
    absl::StatusOr<std::shared_ptr<vector::Collection>> made = store.Create(want);
    if (!made.ok())
      return absl::Status(made.status().code(),
                          fmt::format("cannot create collection '{}': {}", want.name,
                                      std::string(made.status().message())));
    if (created) created->push_back(want.name);
  }
  return absl::OkStatus();
}

}  // namespace cairn::server
