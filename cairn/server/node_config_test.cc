#include "cairn/server/node_config.h"

#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class NodeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Touch("models/tiny.gguf");
    Touch("tls/cert.pem");
    Touch("tls/key.pem");
    Touch("pipelines/p.yaml");
  }
  void Touch(const std::string& rel) {
    std::filesystem::path p = std::filesystem::path(dir_.path()) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << "x";
  }
  absl::StatusOr<NodeConfig> Parse(const std::string& yaml) {
    auto env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return ParseNodeConfig(yaml, "node.yaml", dir_.path(), env);
  }
  std::string Error(const std::string& yaml) {
    absl::StatusOr<NodeConfig> c = Parse(yaml);
    EXPECT_FALSE(c.ok()) << yaml;
    return c.ok() ? "" : std::string(c.status().message());
  }
  std::string Abs(const std::string& rel) const { return (std::filesystem::path(dir_.path()) / rel).string(); }

  testing::TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(NodeConfigTest, ReadsEveryKeyAndResolvesPathsAgainstTheFile) {
  env_["NODE_KEYS"] = "env-a, env-b\n";
  absl::StatusOr<NodeConfig> c = Parse(R"(
listen: 0.0.0.0:8443
data_dir: data
threads: 6
max_body_mb: 8
api_keys: [file-key]
api_keys_env: NODE_KEYS
metrics_public: true
tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}
models:
  - {name: small, path: models/tiny.gguf, slots: 8, ctx: 512, queue: 16, threads: 2, timeout_s: 30.5,
     prefill_chunk: 16, chat_template: chatml}
  - path: models/tiny.gguf
    name: other
collections:
  - {name: docs, dim: 8, metric: l2, index: {type: flat}, embedder: hash}
  - name: "7days"
    dim: 16
pipelines: [pipelines/p.yaml]
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "0.0.0.0:8443");
  EXPECT_EQ(c->data_dir, Abs("data"));
  EXPECT_EQ(c->threads, 6);
  EXPECT_EQ(c->max_body_mb, 8u);
  EXPECT_THAT(c->api_keys, ElementsAre("file-key", "env-a", "env-b"));
  EXPECT_TRUE(c->metrics_public);
  EXPECT_EQ(c->tls_cert_file, Abs("tls/cert.pem"));
  EXPECT_EQ(c->tls_key_file, Abs("tls/key.pem"));
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].name, "small");
  EXPECT_EQ(c->models[0].path, Abs("models/tiny.gguf"));
  EXPECT_EQ(c->models[0].slots, 8);
  EXPECT_EQ(c->models[0].ctx, 512);
  EXPECT_EQ(c->models[0].queue, 16);
  EXPECT_EQ(c->models[0].threads, 2);
  EXPECT_EQ(c->models[0].prefill_chunk, 16);
  EXPECT_DOUBLE_EQ(c->models[0].timeout_s, 30.5);
  EXPECT_EQ(c->models[0].chat_template, "chatml");
  EXPECT_EQ(c->models[1].slots, 4);  // defaults
  EXPECT_EQ(c->models[1].queue, 64);
  EXPECT_EQ(c->models[1].prefill_chunk, 32);
  ASSERT_EQ(c->collections.size(), 2u);
  EXPECT_EQ(c->collections[0].name, "docs");
  EXPECT_EQ(c->collections[0].dim, 8u);
  EXPECT_EQ(c->collections[0].metric, vector::Metric::kL2);
  EXPECT_EQ(c->collections[0].index, vector::IndexKind::kFlat);
  EXPECT_EQ(c->collections[1].name, "7days");  // quoted: a string even where it reads as a number
  EXPECT_EQ(c->collections[1].metric, vector::Metric::kCosine);
  EXPECT_THAT(c->pipelines, ElementsAre(Abs("pipelines/p.yaml")));
}

TEST_F(NodeConfigTest, AnEmptyFileLeavesEverythingToTheFlags) {
  absl::StatusOr<NodeConfig> c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->listen);
  EXPECT_FALSE(c->data_dir);
  EXPECT_TRUE(c->api_keys.empty());
  EXPECT_TRUE(c->models.empty());
  c = Parse("models: [{path: models/tiny.gguf}]");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->models[0].name, "tiny");
}

TEST_F(NodeConfigTest, ErrorsNameTheKeyPath) {
  EXPECT_THAT(Error("listen: [1, 2]"), HasSubstr("key 'listen'"));
  EXPECT_THAT(Error("lisen: x"), HasSubstr("unknown key 'lisen'"));
  std::string slots =
      Error("models:\n  - {path: models/tiny.gguf}\n  - {path: models/tiny.gguf, name: b, slots: four}\n");
  EXPECT_THAT(slots, HasSubstr("models[1].slots"));
  EXPECT_THAT(slots, HasSubstr("expected an integer"));
  EXPECT_THAT(slots, HasSubstr("line 3"));
  EXPECT_THAT(Error("models: [{path: models/tiny.gguf, slot: 2}]"), HasSubstr("unknown key 'models[0].slot'"));
  EXPECT_THAT(Error("models: [{path: models/tiny.gguf, slots: 0}]"),
              HasSubstr("models[0].slots' (line 1): must be in 1..256"));
  EXPECT_THAT(Error("models: [{path: models/none.gguf}]"), HasSubstr("no such file '" + Abs("models/none.gguf")));
  EXPECT_THAT(Error("models: [{name: a}]"), HasSubstr("missing required key 'models[0].path'"));
  EXPECT_THAT(Error("models: [{path: models/tiny.gguf}, {path: models/tiny.gguf}]"),
              HasSubstr("a second model named 'tiny'"));
  EXPECT_THAT(Error("models: {path: x}"), HasSubstr("expected a list"));
  EXPECT_THAT(Error("models: [{path: models/tiny.gguf, timeout_s: -1}]"), HasSubstr("timeout_s"));
  EXPECT_THAT(Error("models: [{path: models/tiny.gguf, prefill_chunk: 0}]"), HasSubstr("models[0].prefill_chunk"));
  EXPECT_THAT(Error("threads: -1"), HasSubstr("'threads'"));
  EXPECT_THAT(Error("max_body_mb: 0"), HasSubstr("'max_body_mb'"));
  EXPECT_THAT(Error("metrics_public: maybe"), HasSubstr("metrics_public"));
  EXPECT_THAT(Error("api_keys: key"), HasSubstr("'api_keys'"));
  EXPECT_THAT(Error("api_keys: ['a b']"), HasSubstr("whitespace"));
  EXPECT_THAT(Error("api_keys_env: NOPE"), HasSubstr("environment variable 'NOPE' is not set"));
  env_["EMPTY"] = " , ";
  EXPECT_THAT(Error("api_keys_env: EMPTY"), HasSubstr("holds no key"));
  EXPECT_THAT(Error("tls: {cert_file: tls/cert.pem}"), HasSubstr("needs both cert_file and key_file"));
  EXPECT_THAT(Error("tls: {cert_file: tls/cert.pem, key_file: tls/nokey.pem}"),
              HasSubstr("tls.key_file' (line 1): no such file"));
  EXPECT_THAT(Error("tls: {cert: a}"), HasSubstr("unknown key 'tls.cert'"));
  std::string dim = Error("collections:\n  - {name: docs, dim: 8}\n  - {name: more, dim: lots}\n");
  EXPECT_THAT(dim, HasSubstr("collections[1]"));
  EXPECT_THAT(dim, HasSubstr("'dim'"));
  EXPECT_THAT(Error("collections: [{name: docs, dim: 8, metrc: l2}]"), HasSubstr("metrc"));
  EXPECT_THAT(Error("collections: [{name: docs, dim: 8}, {name: docs, dim: 4}]"),
              HasSubstr("a second collection named 'docs'"));
  EXPECT_THAT(Error("pipelines: [pipelines/none.yaml]"), HasSubstr("none.yaml"));
  EXPECT_THAT(Error("listen: [unclosed"), HasSubstr("node.yaml"));
}

TEST_F(NodeConfigTest, LoadsAFileRelativeToItsDirectory) {
  std::ofstream(Abs("node.yaml")) << "data_dir: store\nmodels: [{path: models/tiny.gguf}]\n";
  absl::StatusOr<NodeConfig> c = LoadNodeConfig(Abs("node.yaml"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, Abs("store"));
  EXPECT_EQ(c->models[0].path, Abs("models/tiny.gguf"));
  EXPECT_EQ(c->source, Abs("node.yaml"));
  absl::StatusOr<NodeConfig> missing = LoadNodeConfig(Abs("none.yaml"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("none.yaml"));
}

TEST_F(NodeConfigTest, EnsureCollectionsCreatesTheMissingOnesOnly) {
  absl::StatusOr<std::unique_ptr<vector::CollectionStore>> store =
      vector::CollectionStore::Open(Abs("collections"), {.fsync = vector::FsyncPolicy::kNever});
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<NodeConfig> c = Parse("collections: [{name: a, dim: 4}, {name: b, dim: 8, metric: ip}]");
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<std::string> created;
  ASSERT_TRUE(EnsureCollections(**store, c->collections, &created).ok());
  EXPECT_THAT(created, ElementsAre("a", "b"));
  created.clear();
  ASSERT_TRUE(EnsureCollections(**store, c->collections, &created).ok());
  EXPECT_TRUE(created.empty());
  EXPECT_EQ((*store)->List().size(), 2u);
  absl::StatusOr<NodeConfig> changed = Parse("collections: [{name: b, dim: 16}]");
  ASSERT_TRUE(changed.ok());
  absl::Status s = EnsureCollections(**store, changed->collections);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("collection 'b' exists with dim 8"));
}

}  // namespace
}  // namespace cairn::server
