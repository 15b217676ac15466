// cairn/server/collections_api.h — the HTTP API of the vector collections.
//
//   POST   /v1/collections                      create
//          {"name": "docs", "dim": 384, "metric": "cosine"|"l2"|"ip",
//           "index": {"type": "hnsw"|"flat"|"hnsw_sq8", "M": 16, "ef_construction": 200,
//                     "ef_search": 64}   (or just "hnsw"),
//           "embedder": "hash"|"none"}
//          → 201 the collection (below); 409 when the name is taken
//   GET    /v1/collections                      → {"collections": [collection, ...]} by name
//   GET    /v1/collections/{name}               → collection
//   DELETE /v1/collections/{name}               → {"name": ..., "deleted": true}
//   POST   /v1/collections/{name}/points        upsert a batch, all or nothing
//          {"points": [{"id": 7, "vector": [...]?, "text": "..."?, "attributes": {...}?}, ...]}
//          → {"upserted": n, "count": points in the collection}
//          A bad point anywhere → 400 naming it ("points[3].vector has 127 values; ...")
//          and nothing is written.
//   GET    /v1/collections/{name}/points/{id}   → {"id", "vector", "text"?, "attributes"}
//   DELETE /v1/collections/{name}/points/{id}   → {"id": 7, "deleted": true}
//   POST   /v1/collections/{name}/search
//          {"vector": [...]? , "text": "..."?, "k": 10, "ef": 0?, "filter": {...}?,
//           "hybrid": {"vector_weight": 1, "text_weight": 1}?, "with_vectors": false?}
//          → {"results": [{"id", "score", "distance"?, "bm25"?, "text"?, "attributes"?,
//                          "vector"?}], "took_ms": 0.42}
//          Filters: see cairn/vector/filter.h.
// where collection = {"name", "dim", "metric", "index": {"type", "M", "ef_construction",
// "ef_search"}, "embedder", "count"}. Point ids are unsigned 64-bit integers.
//
// The Parse* functions turn request bodies into the vector API's types; they are
// separate from the handlers so tests and the fuzz target reach them directly.
// Thread-safety: the handlers are as thread-safe as CollectionStore (fully).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "cairn/server/router.h"
#include "cairn/vector/collection.h"

namespace cairn::server {

// Registers the routes above on `router`; `store` must outlive it.
void AddCollectionRoutes(Router& router, vector::CollectionStore& store);

absl::StatusOr<vector::CollectionSettings> ParseCreateCollection(const nlohmann::json& body);
// Checks every point against `settings` (dimension, a vector or an embeddable
// text, attributes, distinct ids) so a bad batch is refused whole, naming the point.
absl::StatusOr<std::vector<vector::Point>> ParseUpsert(const nlohmann::json& body,
                                                       const vector::CollectionSettings& settings);
absl::StatusOr<vector::SearchRequest> ParseSearch(const nlohmann::json& body,
                                                  const vector::CollectionSettings& settings);
// A point id from a path segment: decimal digits only, within uint64.
absl::StatusOr<uint64_t> ParsePointId(std::string_view text);

nlohmann::json CollectionToJson(const vector::CollectionSettings& settings, size_t count);
nlohmann::json PointToJson(const vector::Point& point);
nlohmann::json HitToJson(const vector::SearchHit& hit);

}  // namespace cairn::server
