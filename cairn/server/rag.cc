#include "cairn/server/rag.h"

#include "cairn/server/collections_api.h"
#include "cairn/server/json_body.h"
#include "cairn/vector/filter.h"
#include "fmt/format.h"

namespace cairn::server {

namespace {

using nlohmann::json;

constexpr std::string_view kField = "cairn.rag";

constexpr std::string_view kInstructions =
    "Answer the user's question from the numbered passages below. Cite every passage you use by its number in "
    "square brackets, like [1] or [2][3]. If the passages do not contain the answer, say so instead of guessing.";

bool Blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  return true;
}

}  // namespace

absl::StatusOr<RagOptions> ParseRagOptions(const json& rag) {
  if (!rag.is_object())
    return WrongType(kField, "an object {\"collection\": NAME, \"k\"?, \"filter\"?, \"hybrid\"?}", rag);
  if (absl::Status s = RejectUnknownFields(rag, kField, {"collection", "k", "filter", "hybrid"}); !s.ok()) return s;
  RagOptions options;
  absl::StatusOr<std::string> collection = RequiredString(rag, kField, "collection");
  if (!collection.ok()) return collection.status();
  if (collection->empty())
    return absl::InvalidArgumentError(fmt::format("'{}.collection' is empty", std::string(kField)));
  options.collection = std::move(*collection);
  if (const json* k = Find(rag, "k")) {
    absl::StatusOr<int64_t> value = AsInt(*k, Child(kField, "k"), 1, kMaxRagPassages);
    if (!value.ok()) return value.status();
    options.k = static_cast<int>(*value);
  }
  if (const json* filter = Find(rag, "filter")) {
    const std::string field = Child(kField, "filter");
    if (!filter->is_object()) return WrongType(field, "an object (see the filter syntax)", *filter);
    // The collections API's filter parser: the syntax is the same everywhere.
    absl::StatusOr<vector::Predicate> predicate = vector::ParseFilter(*filter);
    if (!predicate.ok()) {
      // It names the node inside the filter ("filter.and[1]: ...").
      const std::string m(predicate.status().message());
      return absl::InvalidArgumentError(m.rfind("filter", 0) == 0 ? fmt::format("{}.{}", std::string(kField), m)
                                                                   : fmt::format("'{}': {}", field, m));
    }
    options.filter = *filter;
  }
  if (const json* hybrid = Find(rag, "hybrid")) {
    const std::string field = Child(kField, "hybrid");
    if (!hybrid->is_object()) return WrongType(field, "an object {vector_weight, text_weight}", *hybrid);
    if (absl::Status s = RejectUnknownFields(*hybrid, field, {"vector_weight", "text_weight"}); !s.ok()) return s;
    if (const json* w = Find(*hybrid, "vector_weight")) {
      absl::StatusOr<double> value = AsDouble(*w, Child(field, "vector_weight"), 0, 1e6);
      if (!value.ok()) return value.status();
      options.vector_weight = *value;
    }
    if (const json* w = Find(*hybrid, "text_weight")) {
      absl::StatusOr<double> value = AsDouble(*w, Child(field, "text_weight"), 0, 1e6);
      if (!value.ok()) return value.status();
      options.text_weight = *value;
    }
    if (options.vector_weight == 0 && options.text_weight == 0)
      return absl::InvalidArgumentError(fmt::format("'{}': vector_weight and text_weight cannot both be 0", field));
  }
  return options;
}

absl::StatusOr<std::vector<Passage>> Retrieve(vector::CollectionStore& store, const RagOptions& options,
                                              std::string_view question) {
  if (Blank(question)) return absl::InvalidArgumentError("the question to retrieve passages for is empty");
  if (options.k < 1 || options.k > kMaxRagPassages)
    return absl::InvalidArgumentError(
        fmt::format("'{}.k' must be in 1..{}, got {}", std::string(kField), kMaxRagPassages, options.k));
  absl::StatusOr<std::shared_ptr<vector::Collection>> collection = store.Get(options.collection);
  if (!collection.ok()) {
    if (absl::IsNotFound(collection.status()))
      return absl::NotFoundError(
          fmt::format("'{}.collection': there is no collection named '{}'", std::string(kField), options.collection));
    return collection.status();
  }
  // The same request the collections API's search endpoint would build.
  json body = {{"text", std::string(question)},
               {"k", options.k},
               {"hybrid", {{"vector_weight", options.vector_weight}, {"text_weight", options.text_weight}}}};
  if (!options.filter.is_null()) body["filter"] = options.filter;
  absl::StatusOr<vector::SearchRequest> request = ParseSearch(body, (*collection)->settings());
  if (!request.ok())
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", std::string(kField), std::string(request.status().message())));
  absl::StatusOr<std::vector<vector::SearchHit>> hits = (*collection)->Search(*request);
  if (!hits.ok())
    return absl::Status(hits.status().code(), fmt::format("{}: searching '{}': {}", std::string(kField),
                                                          options.collection, std::string(hits.status().message())));
  std::vector<Passage> passages;
  passages.reserve(hits->size());
  for (vector::SearchHit& hit : *hits) {
    if (!hit.text || Blank(*hit.text)) continue;
    Passage p;
    p.id = std::to_string(hit.id);
    p.text = std::move(*hit.text);
    p.score = hit.score;
    p.attributes = hit.attributes.empty() ? json::object() : vector::AttributesToJson(hit.attributes);
    passages.push_back(std::move(p));
  }
  return passages;
}

std::vector<infer::ChatMessage> WithPassages(std::span<const infer::ChatMessage> messages,
                                             std::span<const Passage> passages) {
  std::vector<infer::ChatMessage> out(messages.begin(), messages.end());
  if (passages.empty()) return out;
  std::string context(kInstructions);
  context += "\n\nPassages:";
  for (size_t i = 0; i < passages.size(); ++i) context += fmt::format("\n\n[{}] {}", i + 1, passages[i].text);
  if (!out.empty() && out.front().role == "system") {
    // Merged: templates that allow one system message (or only a first one) still work.
    out.front().content = out.front().content.empty() ? context : out.front().content + "\n\n" + context;
  } else {
    out.insert(out.begin(), infer::ChatMessage{"system", std::move(context)});
  }
  return out;
}

json CitationsJson(std::span<const Passage> passages) {
  json out = json::array();
  for (size_t i = 0; i < passages.size(); ++i) {
    const Passage& p = passages[i];
    out.push_back({{"index", i + 1},
                   {"id", p.id},
                   {"score", p.score},
                   {"text", p.text},
                   {"attributes", p.attributes.is_null() ? json::object() : p.attributes}});
  }
  return out;
}

}  // namespace cairn::server
