#include "cairn/server/collections_api.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "fmt/format.h"
#include "cairn/server/json_body.h"
#include "cairn/vector/filter.h"

namespace cairn::server {

using nlohmann::json;
using vector::CollectionSettings;

namespace {

constexpr int64_t kMaxDim = 65536;
constexpr int64_t kMaxK = 10000;
constexpr int64_t kMaxEf = 100000;
constexpr int64_t kMaxHnswM = 512;
constexpr int64_t kMaxEfConstruction = 100000;

absl::Status Prefixed(const absl::Status& s, std::string_view field) {
  return absl::Status(s.code(), fmt::format("'{}': {}", field, std::string(s.message())));
}

absl::Status ParseIndexSettings(const json& v, CollectionSettings* settings) {
  if (v.is_string()) {
    absl::StatusOr<vector::IndexKind> kind = vector::ParseIndexKind(v.get<std::string>());
    if (!kind.ok()) return Prefixed(kind.status(), "index");
    settings->index = *kind;
    return absl::OkStatus();
  }
  if (!v.is_object()) return WrongType("index", "an object {type, M, ef_construction, ef_search} or a type name", v);
  if (absl::Status s = RejectUnknownFields(v, "index", {"type", "M", "m", "ef_construction", "ef_search"}); !s.ok())
    return s;
  if (const json* type = Find(v, "type")) {
    absl::StatusOr<std::string> name = AsString(*type, "index.type");
    if (!name.ok()) return name.status();
    absl::StatusOr<vector::IndexKind> kind = vector::ParseIndexKind(*name);
    if (!kind.ok()) return Prefixed(kind.status(), "index.type");
    settings->index = *kind;
  }
  for (const char* key : {"M", "m"}) {
    if (const json* m = Find(v, key)) {
      absl::StatusOr<int64_t> value = AsInt(*m, Child("index", key), 2, kMaxHnswM);
      if (!value.ok()) return value.status();
      settings->hnsw.m = static_cast<size_t>(*value);
    }
  }
  if (const json* ef = Find(v, "ef_construction")) {
    absl::StatusOr<int64_t> value = AsInt(*ef, "index.ef_construction", 1, kMaxEfConstruction);
    if (!value.ok()) return value.status();
    settings->hnsw.ef_construction = static_cast<size_t>(*value);
  }
  if (const json* ef = Find(v, "ef_search")) {
    absl::StatusOr<int64_t> value = AsInt(*ef, "index.ef_search", 1, kMaxEf);
    if (!value.ok()) return value.status();
    settings->hnsw.ef_search = static_cast<size_t>(*value);
  }
  return absl::OkStatus();
}

std::string_view MetricFieldHelp() { return "one of \"cosine\", \"l2\", \"ip\""; }

// The collection names a bad point "point 3 (id 17): ..."; the client wrote
// it as points[3], so say that (the server's own checks already do).
absl::Status InTermsOfTheRequest(const absl::Status& s) {
  std::string m(s.message());
  if (m.rfind("point ", 0) != 0) return s;
  size_t end = 6;
  while (end < m.size() && m[end] >= '0' && m[end] <= '9') ++end;
  if (end == 6 || m.compare(end, 5, " (id ") != 0) return s;
  return absl::Status(s.code(), fmt::format("'points[{}]'{}", m.substr(6, end - 6), m.substr(end)));
}

Response Created(json body) { return Response::Json(std::move(body), 201); }

absl::StatusOr<std::shared_ptr<vector::Collection>> Lookup(vector::CollectionStore& store, std::string_view name) {
  absl::StatusOr<std::shared_ptr<vector::Collection>> c = store.Get(name);
  if (!c.ok() && c.status().code() == absl::StatusCode::kNotFound)
    return absl::NotFoundError(fmt::format("collection '{}' does not exist", name));
  return c;
}

// Handlers. Each reads the request, calls the store, and maps Status → HTTP.

Response CreateCollection(vector::CollectionStore& store, const Request& req) {
  absl::StatusOr<json> body = ParseJsonObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  absl::StatusOr<CollectionSettings> settings = ParseCreateCollection(*body);
  if (!settings.ok()) return Response::FromStatus(settings.status());
  absl::StatusOr<std::shared_ptr<vector::Collection>> created = store.Create(*settings);
  if (!created.ok()) {
    if (created.status().code() == absl::StatusCode::kAlreadyExists)
      return Response::Error(409, kConflict, fmt::format("collection '{}' already exists", settings->name));
    return Response::FromStatus(created.status());
  }
  return Created(CollectionToJson((*created)->settings(), (*created)->Count()));
}

Response ListCollections(vector::CollectionStore& store, const Request&) {
  json list = json::array();
  for (const CollectionSettings& settings : store.List()) {
    absl::StatusOr<std::shared_ptr<vector::Collection>> c = store.Get(settings.name);
    if (!c.ok()) continue;  // dropped meanwhile
    list.push_back(CollectionToJson((*c)->settings(), (*c)->Count()));
  }
  return Response::Json({{"collections", std::move(list)}});
}

Response GetCollection(vector::CollectionStore& store, const Request& req) {
  absl::StatusOr<std::shared_ptr<vector::Collection>> c = Lookup(store, req.Param("name"));
  if (!c.ok()) return Response::FromStatus(c.status());
  return Response::Json(CollectionToJson((*c)->settings(), (*c)->Count()));
}

Response DropCollection(vector::CollectionStore& store, const Request& req) {
  std::string name(req.Param("name"));
  absl::Status s = store.Drop(name);
  if (s.code() == absl::StatusCode::kNotFound)
    return Response::Error(404, kNotFound, fmt::format("collection '{}' does not exist", name));
  if (!s.ok()) return Response::FromStatus(s);
  return Response::Json({{"name", name}, {"deleted", true}});
}

Response UpsertPoints(vector::CollectionStore& store, const Request& req) {
  absl::StatusOr<std::shared_ptr<vector::Collection>> c = Lookup(store, req.Param("name"));
  if (!c.ok()) return Response::FromStatus(c.status());
  absl::StatusOr<json> body = ParseJsonObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  absl::StatusOr<std::vector<vector::Point>> points = ParseUpsert(*body, (*c)->settings());
  if (!points.ok()) return Response::FromStatus(points.status());
  if (absl::Status s = (*c)->Upsert(*points); !s.ok()) return Response::FromStatus(InTermsOfTheRequest(s));
  return Response::Json({{"upserted", points->size()}, {"count", (*c)->Count()}});
}

Response GetPoint(vector::CollectionStore& store, const Request& req) {
  absl::StatusOr<std::shared_ptr<vector::Collection>> c = Lookup(store, req.Param("name"));
  if (!c.ok()) return Response::FromStatus(c.status());
  absl::StatusOr<uint64_t> id = ParsePointId(req.Param("id"));
  if (!id.ok()) return Response::FromStatus(id.status());
  absl::StatusOr<vector::Point> point = (*c)->Get(*id);
  if (!point.ok()) {
    if (point.status().code() == absl::StatusCode::kNotFound)
      return Response::Error(404, kNotFound, fmt::format("collection '{}' has no point {}", (*c)->name(), *id));
    return Response::FromStatus(point.status());
  }
  return Response::Json(PointToJson(*point));
}

Response DeletePoint(vector::CollectionStore& store, const Request& req) {
  absl::StatusOr<std::shared_ptr<vector::Collection>> c = Lookup(store, req.Param("name"));
  if (!c.ok()) return Response::FromStatus(c.status());
  absl::StatusOr<uint64_t> id = ParsePointId(req.Param("id"));
  if (!id.ok()) return Response::FromStatus(id.status());
  absl::Status s = (*c)->Delete(*id);
  if (s.code() == absl::StatusCode::kNotFound)
    return Response::Error(404, kNotFound, fmt::format("collection '{}' has no point {}", (*c)->name(), *id));
  if (!s.ok()) return Response::FromStatus(s);
  return Response::Json({{"id", *id}, {"deleted", true}});
}

Response Search(vector::CollectionStore& store, const Request& req) {
  absl::StatusOr<std::shared_ptr<vector::Collection>> c = Lookup(store, req.Param("name"));
  if (!c.ok()) return Response::FromStatus(c.status());
  absl::StatusOr<json> body = ParseJsonObject(req.body);
  if (!body.ok()) return Response::FromStatus(body.status());
  absl::StatusOr<vector::SearchRequest> search = ParseSearch(*body, (*c)->settings());
  if (!search.ok()) return Response::FromStatus(search.status());
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<vector::SearchHit>> hits = (*c)->Search(*search);
  const double took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!hits.ok()) return Response::FromStatus(hits.status());
  json results = json::array();
  for (const vector::SearchHit& hit : *hits) results.push_back(HitToJson(hit));
  return Response::Json({{"results", std::move(results)}, {"took_ms", std::round(took_ms * 1000) / 1000}});
}

}  // namespace

absl::StatusOr<CollectionSettings> ParseCreateCollection(const json& body) {
  if (!body.is_object()) return WrongType("the request body", "a JSON object", body);
  if (absl::Status s = RejectUnknownFields(body, "", {"name", "dim", "metric", "index", "embedder"}); !s.ok())
    return s;
  CollectionSettings settings;
  absl::StatusOr<std::string> name = RequiredString(body, "", "name");
  if (!name.ok()) return name.status();
  settings.name = *name;
  absl::StatusOr<int64_t> dim = RequiredInt(body, "", "dim", 1, kMaxDim);
  if (!dim.ok()) return dim.status();
  settings.dim = static_cast<size_t>(*dim);
  if (const json* metric = Find(body, "metric")) {
    if (!metric->is_string()) return WrongType("metric", MetricFieldHelp(), *metric);
    absl::StatusOr<vector::Metric> m = vector::ParseMetric(metric->get<std::string>());
    if (!m.ok())
      return absl::InvalidArgumentError(
          fmt::format("'metric' must be {}, got \"{}\"", MetricFieldHelp(), metric->get<std::string>()));
    settings.metric = *m;
  }
  if (const json* index = Find(body, "index")) {
    if (absl::Status s = ParseIndexSettings(*index, &settings); !s.ok()) return s;
  }
  if (const json* embedder = Find(body, "embedder")) {
    absl::StatusOr<std::string> e = AsString(*embedder, "embedder");
    if (!e.ok()) return e.status();
    settings.embedder = *e;
  }
  if (absl::Status s = settings.Validate(); !s.ok()) return absl::InvalidArgumentError(s.message());
  return settings;
}

absl::StatusOr<std::vector<vector::Point>> ParseUpsert(const json& body, const CollectionSettings& settings) {
  if (!body.is_object()) return WrongType("the request body", "a JSON object", body);
  if (absl::Status s = RejectUnknownFields(body, "", {"points"}); !s.ok()) return s;
  const json* list = Find(body, "points");
  if (!list) return absl::InvalidArgumentError("'points' is required: an array of {id, vector?, text?, attributes?}");
  if (!list->is_array()) return WrongType("points", "an array of points", *list);
  if (list->empty()) return absl::InvalidArgumentError("'points' is empty; send at least one point");
  const bool can_embed = settings.embedder != "none";
  std::vector<vector::Point> points;
  points.reserve(list->size());
  absl::flat_hash_map<uint64_t, size_t> first_index;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string at = Element("points", i);
    const json& p = (*list)[i];
    if (!p.is_object()) return WrongType(at, "an object {id, vector?, text?, attributes?}", p);
    if (absl::Status s = RejectUnknownFields(p, at, {"id", "vector", "text", "attributes"}); !s.ok()) return s;
    vector::Point point;
    const json* id = Find(p, "id");
    if (!id) return absl::InvalidArgumentError(fmt::format("'{}' is required", Child(at, "id")));
    absl::StatusOr<uint64_t> id_value = AsUint64(*id, Child(at, "id"));
    if (!id_value.ok()) return id_value.status();
    point.id = *id_value;
    if (auto [it, fresh] = first_index.emplace(point.id, i); !fresh)
      return absl::InvalidArgumentError(
          fmt::format("'{}' repeats id {} of points[{}]; ids in a batch must be distinct", Child(at, "id"),
                      point.id, it->second));
    if (const json* text = Find(p, "text")) {
      absl::StatusOr<std::string> t = AsString(*text, Child(at, "text"));
      if (!t.ok()) return t.status();
      point.text = std::move(*t);
    }
    if (const json* v = Find(p, "vector")) {
      absl::StatusOr<std::vector<float>> values = AsFloatVector(*v, Child(at, "vector"));
      if (!values.ok()) return values.status();
      if (values->size() != settings.dim)
        return absl::InvalidArgumentError(fmt::format("'{}' has {} values; collection '{}' has dimension {}",
                                                      Child(at, "vector"), values->size(), settings.name,
                                                      settings.dim));
      if (settings.metric == vector::Metric::kCosine) {
        bool all_zero = true;
        for (float x : *values) all_zero = all_zero && x == 0.0f;
        if (all_zero)
          return absl::InvalidArgumentError(fmt::format(
              "'{}' is all zeros; collection '{}' uses cosine distance, which needs a non-zero vector",
              Child(at, "vector"), settings.name));
      }
      point.vector = std::move(*values);
    } else if (!point.text) {
      return absl::InvalidArgumentError(fmt::format("'{}' needs a 'vector' (or a 'text' to embed)", at));
    } else if (!can_embed) {
      return absl::InvalidArgumentError(fmt::format(
          "'{}' has no 'vector', and collection '{}' has no embedder to make one from its text", at, settings.name));
    }
    if (const json* a = Find(p, "attributes")) {
      if (!a->is_object()) return WrongType(Child(at, "attributes"), "an object", *a);
      absl::StatusOr<vector::Attributes> attributes = vector::AttributesFromJson(*a);
      if (!attributes.ok()) return Prefixed(attributes.status(), Child(at, "attributes"));
      if (absl::Status s = vector::ValidateAttributes(*attributes); !s.ok())
        return Prefixed(absl::InvalidArgumentError(s.message()), Child(at, "attributes"));
      point.attributes = std::move(*attributes);
    }
    points.push_back(std::move(point));
  }
  return points;
}

absl::StatusOr<vector::SearchRequest> ParseSearch(const json& body, const CollectionSettings& settings) {
  if (!body.is_object()) return WrongType("the request body", "a JSON object", body);
  if (absl::Status s =
          RejectUnknownFields(body, "", {"vector", "text", "k", "ef", "filter", "hybrid", "with_vectors"});
      !s.ok())
    return s;
  vector::SearchRequest request;
  if (const json* v = Find(body, "vector")) {
    absl::StatusOr<std::vector<float>> values = AsFloatVector(*v, "vector");
    if (!values.ok()) return values.status();
    if (values->size() != settings.dim)
      return absl::InvalidArgumentError(fmt::format("'vector' has {} values; collection '{}' has dimension {}",
                                                    values->size(), settings.name, settings.dim));
    request.vector = std::move(*values);
  }
  if (const json* t = Find(body, "text")) {
    absl::StatusOr<std::string> text = AsString(*t, "text");
    if (!text.ok()) return text.status();
    request.text = std::move(*text);
  }
  if (request.vector.empty() && !request.text)
    return absl::InvalidArgumentError("the search needs a 'vector' or a 'text' (or both, for hybrid search)");
  if (const json* k = Find(body, "k")) {
    absl::StatusOr<int64_t> value = AsInt(*k, "k", 1, kMaxK);
    if (!value.ok()) return value.status();
    request.k = static_cast<size_t>(*value);
  }
  if (const json* ef = Find(body, "ef")) {
    absl::StatusOr<int64_t> value = AsInt(*ef, "ef", 0, kMaxEf);
    if (!value.ok()) return value.status();
    request.ef = static_cast<size_t>(*value);
  }
  if (const json* filter = Find(body, "filter")) {
    if (!filter->is_object()) return WrongType("filter", "an object (see the filter syntax)", *filter);
    absl::StatusOr<vector::Predicate> predicate = vector::ParseFilter(*filter);
    if (!predicate.ok()) {
      // The vector API names the node inside the filter ("filter.and[1]: ...");
      // add the field only when it does not.
      const std::string m(predicate.status().message());
      return absl::InvalidArgumentError(m.rfind("filter", 0) == 0 ? std::string(m)
                                                                   : fmt::format("'filter': {}", m));
    }
    request.filter = std::move(*predicate);
  }
  if (const json* hybrid = Find(body, "hybrid")) {
    if (!hybrid->is_object()) return WrongType("hybrid", "an object {vector_weight, text_weight}", *hybrid);
    if (absl::Status s = RejectUnknownFields(*hybrid, "hybrid", {"vector_weight", "text_weight"}); !s.ok()) return s;
    if (const json* w = Find(*hybrid, "vector_weight")) {
      absl::StatusOr<double> value = AsDouble(*w, "hybrid.vector_weight", 0, 1e6);
      if (!value.ok()) return value.status();
      request.vector_weight = *value;
    }
    if (const json* w = Find(*hybrid, "text_weight")) {
      absl::StatusOr<double> value = AsDouble(*w, "hybrid.text_weight", 0, 1e6);
      if (!value.ok()) return value.status();
      request.text_weight = *value;
    }
    if (request.vector_weight == 0 && request.text_weight == 0)
      return absl::InvalidArgumentError("'hybrid': vector_weight and text_weight are both 0; one must be > 0");
  }
  if (const json* w = Find(body, "with_vectors")) {
    absl::StatusOr<bool> value = AsBool(*w, "with_vectors");
    if (!value.ok()) return value.status();
    request.with_vectors = *value;
  }
  return request;
}

absl::StatusOr<uint64_t> ParsePointId(std::string_view text) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(
        fmt::format("point id '{}' in the path must be an unsigned 64-bit integer", text.substr(0, 64)));
  };
  if (text.empty() || text.size() > 20) return bad();
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad();
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return bad();
    value = value * 10 + digit;
  }
  return value;
}

json CollectionToJson(const CollectionSettings& settings, size_t count) {
  return {{"name", settings.name},
          {"dim", settings.dim},
          {"metric", std::string(vector::MetricName(settings.metric))},
          {"index",
           {{"type", std::string(vector::IndexKindName(settings.index))},
            {"M", settings.hnsw.m},
            {"ef_construction", settings.hnsw.ef_construction},
            {"ef_search", settings.hnsw.ef_search}}},
          {"embedder", settings.embedder},
          {"count", count}};
}

json PointToJson(const vector::Point& point) {
  json out = {{"id", point.id}, {"vector", point.vector}};
  if (point.text) out["text"] = *point.text;
  out["attributes"] = vector::AttributesToJson(point.attributes);
  return out;
}

json HitToJson(const vector::SearchHit& hit) {
  json out = {{"id", hit.id}, {"score", hit.score}};
  if (hit.distance) out["distance"] = *hit.distance;
  if (hit.bm25) out["bm25"] = *hit.bm25;
  if (hit.text) out["text"] = *hit.text;
  if (!hit.attributes.empty()) out["attributes"] = vector::AttributesToJson(hit.attributes);
  if (!hit.vector.empty()) out["vector"] = hit.vector;
  return out;
}

void AddCollectionRoutes(Router& router, vector::CollectionStore& store) {
  vector::CollectionStore* s = &store;
  router.Add("POST", "/v1/collections", [s](const Request& r) { return CreateCollection(*s, r); });
  router.Add("GET", "/v1/collections", [s](const Request& r) { return ListCollections(*s, r); });
  router.Add("GET", "/v1/collections/{name}", [s](const Request& r) { return GetCollection(*s, r); });
  router.Add("DELETE", "/v1/collections/{name}", [s](const Request& r) { return DropCollection(*s, r); });
  router.Add("POST", "/v1/collections/{name}/points", [s](const Request& r) { return UpsertPoints(*s, r); });
  router.Add("GET", "/v1/collections/{name}/points/{id}", [s](const Request& r) { return GetPoint(*s, r); });
  router.Add("DELETE", "/v1/collections/{name}/points/{id}", [s](const Request& r) { return DeletePoint(*s, r); });
  router.Add("POST", "/v1/collections/{name}/search", [s](const Request& r) { return Search(*s, r); });
}

}  // namespace cairn::server
