// cairn/server/rag.h — retrieval-augmented generation: find passages in a
// collection for a question and put them into a chat as numbered context.
//
// A chat request names what to retrieve from in
//   "cairn": {"rag": {"collection": "docs", "k": 5, "filter": {...},
//                     "hybrid": {"vector_weight": 1, "text_weight": 1}}}
// and `cairn ask` builds the same options from its flags. Retrieve runs the
// collection's hybrid search with the question as the text query: BM25 over the
// points' text, plus the vector side when the collection has an embedder (the
// question is embedded by it), fused by reciprocal rank (collection.h). The
// filter has the collections API's syntax (cairn/vector/filter.h) and restricts
// both sides. Hits without text cannot serve as context and are left out.
//
// WithPassages puts the passages, numbered [1]..[k], into the system message
// (appended to an existing one, or as a new first message) with the instruction
// to answer from them and cite them by number; the chat template then renders
// the messages as usual. CitationsJson lists the same passages with the same
// numbers, for the response's "cairn": {"citations": CitationsJson(passages)}.
//
// Thread-safety: stateless functions; Retrieve is as thread-safe as the store.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/infer/chat_template.h"
#include "cairn/vector/collection.h"
#include "nlohmann/json.hpp"

namespace cairn::server {

inline constexpr int kMaxRagPassages = 100;

struct RagOptions {
  std::string collection;
  int k = 5;                   // passages, 1..kMaxRagPassages
  nlohmann::json filter;       // null or a filter object (checked by ParseRagOptions)
  double vector_weight = 1.0;  // hybrid fusion weights, >= 0, not both 0
  double text_weight = 1.0;
};

// Parses the "rag" object; InvalidArgument naming the field as "cairn.rag.<field>".
absl::StatusOr<RagOptions> ParseRagOptions(const nlohmann::json& rag);

struct Passage {
  std::string id;              // the point id, in decimal
  std::string text;
  double score = 0;            // the search's score (higher is better)
  nlohmann::json attributes;   // the point's attributes (an object, maybe empty)
};

// The best `k` passages for `question`, best first. NotFound naming
// "cairn.rag.collection" when the collection does not exist; InvalidArgument
// when the question is empty or the search cannot run (e.g. a vector-only
// collection without an embedder).
absl::StatusOr<std::vector<Passage>> Retrieve(vector::CollectionStore& store, const RagOptions& options,
                                              std::string_view question);

// `messages` with the passages added as context (see the file comment); unchanged
// when there are no passages.
std::vector<infer::ChatMessage> WithPassages(std::span<const infer::ChatMessage> messages,
                                             std::span<const Passage> passages);

// [{"index": 1, "id": "7", "score": 0.03, "text": "...", "attributes": {...}}, ...]
nlohmann::json CitationsJson(std::span<const Passage> passages);

}  // namespace cairn::server
