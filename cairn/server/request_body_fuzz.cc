// Fuzzes what the server does with request bodies and path segments before any
// store is touched: JSON parsing (depth limit included), the collection API's
// request parsers (create, upsert, search with filters), point ids in paths, and
// the OpenAI API's parsers (chat/completions, completions, embeddings).
// None may crash, hang or leak, whatever the bytes; every refusal is a Status.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/server/collections_api.h"
#include "cairn/server/json_body.h"
#include "cairn/server/openai_api.h"

namespace {

cairn::vector::CollectionSettings Settings(bool cosine, bool embedder) {
  cairn::vector::CollectionSettings s;
  s.name = "fuzz";
  s.dim = 4;
  s.metric = cosine ? cairn::vector::Metric::kCosine : cairn::vector::Metric::kL2;
  s.embedder = embedder ? "hash" : "none";
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)cairn::server::ParsePointId(text);
  absl::StatusOr<nlohmann::json> body = cairn::server::ParseJsonObject(text);
  if (!body.ok()) return 0;
  const bool flag = size % 2 == 0;
  if (auto created = cairn::server::ParseCreateCollection(*body); created.ok())
    (void)cairn::server::CollectionToJson(*created, 0).dump();
  if (auto points = cairn::server::ParseUpsert(*body, Settings(flag, !flag)); points.ok())
    for (const cairn::vector::Point& p : *points) (void)cairn::server::PointToJson(p).dump();
  (void)cairn::server::ParseSearch(*body, Settings(!flag, flag));
  if (auto chat = cairn::server::ParseChatCompletionRequest(*body); chat.ok()) {
    for (const auto& m : chat->messages) (void)cairn::server::SseEvent({{"role", m.role}, {"content", m.content}});
  }
  (void)cairn::server::ParseCompletionRequest(*body);
  (void)cairn::server::ParseEmbeddingRequest(*body);
  return 0;
}
