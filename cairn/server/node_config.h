// cairn/server/node_config.h — the node's configuration file (`cairn serve --config node.yaml`).
//
//   listen: 0.0.0.0:8443            # HOST:PORT ("[v6]:port", ":port"); default 127.0.0.1:8080
//   data_dir: data                  # the node's stores; default cairn-data
//   threads: 16                     # request threads; 0 = max(8, 2 x cores)
//   max_body_mb: 64                 # larger request bodies get 413
//   api_keys: [key-one, key-two]    # bearer keys; any of them is accepted
//   api_keys_env: CAIRN_API_KEYS    # ... and/or keys from this environment variable
//                                   #     (separated by commas or whitespace)
//   metrics_public: false           # true: GET /metrics needs no key
//   tls: {cert_file: cert.pem, key_file: key.pem}   # both or neither: HTTPS
//   models:
//     - {name: qwen, path: models/qwen.gguf, slots: 4, ctx: 2048, queue: 64,
//        threads: 8, prefill_chunk: 32, timeout_s: 600, chat_template: chatml}
//   collections:                    # created at start when missing
//     - {name: docs, dim: 384, metric: cosine, index: {type: hnsw, M: 16}, embedder: hash}
//   pipelines: [pipelines/press.yaml]
//
// Every key is optional. A collection takes the fields of the collections API's
// create request (collections_api.h). Relative paths (data_dir, tls files, model
// and pipeline paths) are relative to the directory of the config file. Unknown
// keys and values of the wrong type are errors that name the file, the key path
// and its line: "node.yaml: key 'models[1].slots' (line 9): expected an integer, got "four"".
// Model and TLS files must exist when the file is loaded.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/server/llm_service.h"
#include "cairn/vector/collection.h"

namespace cairn::server {

// A model the node serves: the language-model service's own options (llm_service.h).
using NodeModelConfig = LlmModelOptions;

struct NodeConfig {
  std::string source;         // the file it came from ("" when parsed from text)
  // Unset when the file does not say; command-line flags override whatever it says.
  std::optional<std::string> listen;
  std::optional<std::string> data_dir;
  std::optional<int> threads;
  std::optional<size_t> max_body_mb;
  std::vector<std::string> api_keys;  // api_keys, then those of api_keys_env
  bool metrics_public = false;
  std::string tls_cert_file;          // both set or both empty
  std::string tls_key_file;
  std::vector<NodeModelConfig> models;
  std::vector<vector::CollectionSettings> collections;
  std::vector<std::string> pipelines;  // absolute paths of pipeline files
};

// Reads an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> ProcessEnv(const std::string& name);

// Loads and checks `path`.
absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path, const EnvLookup& env = ProcessEnv);
// The same from YAML text; relative paths resolve against `base_dir`, and
// `source` names the text in errors.
absl::StatusOr<NodeConfig> ParseNodeConfig(std::string_view yaml, const std::string& source,
                                           const std::string& base_dir, const EnvLookup& env = ProcessEnv);

// Creates each collection of `wanted` that `store` lacks; one that exists must
// have the same dimension and metric (FailedPrecondition otherwise, naming it).
// Appends the names of the collections it created to `created`.
absl::Status EnsureCollections(vector::CollectionStore& store, std::span<const vector::CollectionSettings> wanted,
                               std::vector<std::string>* created = nullptr);

}  // namespace cairn::server
