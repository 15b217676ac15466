#include "cairn/server/memory_api.h"

#include <chrono>
#include <string>

#include <fmt/format.h>

#include "cairn/server/json_body.h"

namespace cairn::server {
namespace {

using nlohmann::json;

Response Fail(const absl::Status& s) {
  if (absl::IsPermissionDenied(s)) return Response::Error(403, "permission_error", std::string(s.message()));
  return Response::FromStatus(s);
}

// Reads an optional field of a type, or says what is wrong with it.
template <typename T>
absl::Status Opt(const json& body, const char* key, T& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) return absl::InvalidArgumentError(fmt::format("'{}' must be a string", key));
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) return absl::InvalidArgumentError(fmt::format("'{}' must be true or false", key));
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) return absl::InvalidArgumentError(fmt::format("'{}' must be an integer", key));
      if (std::is_unsigned_v<T> && it->get<int64_t>() < 0 && !it->is_number_unsigned())
        return absl::InvalidArgumentError(fmt::format("'{}' must not be negative", key));
    } else {
      if (!it->is_number()) return absl::InvalidArgumentError(fmt::format("'{}' must be a number", key));
    }
    out = it->get<T>();
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(fmt::format("'{}': {}", key, e.what()));
  }
  return absl::OkStatus();
}

std::string Agent(const Request& r, const json* body) {
  if (body && body->contains("agent") && (*body)["agent"].is_string()) return (*body)["agent"].get<std::string>();
  if (auto q = r.Query("agent")) return std::string(*q);
  if (auto h = r.Header("X-Cairn-Agent")) return std::string(*h);
  return "";
}

absl::StatusOr<json> Body(const Request& r) {
  absl::StatusOr<json> j = ParseJsonObject(r.body);
  if (!j.ok()) return j.status();
  return j;
}

json FactJson(const memory::Fact& f) {
  json j = {{"id", f.id},         {"subject", f.subject},         {"predicate", f.predicate},
            {"object", f.object}, {"valid_from", f.valid_from_ms}, {"recorded_at", f.recorded_at_ms},
            {"confidence", f.confidence}, {"author", f.author},   {"episodes", f.episodes}};
  j["valid_to"] = f.valid_to_ms ? json(*f.valid_to_ms) : json(nullptr);
  j["superseded_at"] = f.superseded_at_ms ? json(*f.superseded_at_ms) : json(nullptr);
  return j;
}

absl::StatusOr<memory::Episode> ParseEpisode(const json& e, const std::string& ns, const std::string& agent) {
  if (!e.is_object()) return absl::InvalidArgumentError("an episode must be an object");
  memory::Episode ep;
  ep.ns = ns;
  ep.author = agent;
  if (!e.contains("content")) return absl::InvalidArgumentError("'content' is required");
  for (absl::Status s : {Opt(e, "content", ep.content), Opt(e, "time", ep.time_ms), Opt(e, "source", ep.source),
                         Opt(e, "speaker", ep.speaker), Opt(e, "importance", ep.importance),
                         Opt(e, "pinned", ep.pinned)})
    if (!s.ok()) return s;
  return ep;
}

Response CreateNamespace(memory::MemoryStore& m, const Request& r) {
  auto body = Body(r);
  if (!body.ok()) return Fail(body.status());
  std::string owner = Agent(r, nullptr);
  bool shared = false;
  for (absl::Status s : {Opt(*body, "owner", owner), Opt(*body, "shared", shared)})
    if (!s.ok()) return Fail(s);
  const std::string ns(r.Param("namespace"));
  if (absl::Status s = m.CreateNamespace(ns, owner, shared); !s.ok()) return Fail(s);
  if (body->contains("grants")) {
    const json& g = (*body)["grants"];
    if (!g.is_object()) return Fail(absl::InvalidArgumentError("'grants' must be an object"));
    for (auto it = g.begin(); it != g.end(); ++it) {
      bool read = false, write = false;
      if (!it->is_object()) return Fail(absl::InvalidArgumentError("each grant must be {\"read\", \"write\"}"));
      for (absl::Status s : {Opt(*it, "read", read), Opt(*it, "write", write)})
        if (!s.ok()) return Fail(s);
      if (absl::Status s = m.Grant(ns, owner, it.key(), read, write); !s.ok()) return Fail(s);
    }
  }
  auto info = m.GetNamespace(ns);
  if (!info.ok()) return Fail(info.status());
  json grants = json::object();
  for (const auto& [agent, rw] : info->acl) grants[agent] = {{"read", rw.first}, {"write", rw.second}};
  return Response::Json({{"namespace", ns}, {"owner", info->owner}, {"shared", info->shared}, {"grants", grants}},
                        201);
}

Response AddEpisodes(memory::MemoryStore& m, const Request& r) {
  auto body = Body(r);
  if (!body.ok()) return Fail(body.status());
  const std::string agent = Agent(r, &*body);
  const std::string ns(r.Param("namespace"));
  std::vector<memory::Episode> eps;
  if (body->contains("episodes")) {
    const json& list = (*body)["episodes"];
    if (!list.is_array() || list.empty() || list.size() > 10000)
      return Fail(absl::InvalidArgumentError("'episodes' must be an array of 1..10000 episodes"));
    for (size_t i = 0; i < list.size(); ++i) {
      auto e = ParseEpisode(list[i], ns, agent);
      if (!e.ok()) return Fail(absl::InvalidArgumentError(fmt::format("episodes[{}]: {}", i, std::string(e.status().message()))));
      eps.push_back(std::move(*e));
    }
  } else {
    auto e = ParseEpisode(*body, ns, agent);
    if (!e.ok()) return Fail(e.status());
    eps.push_back(std::move(*e));
  }
  auto res = m.RememberBatch(eps);
  if (!res.ok()) return Fail(res.status());
  json out = json::array();
  for (const auto& x : *res)
    out.push_back({{"id", x.episode_id}, {"entities", x.entity_ids}, {"facts", x.fact_ids},
                   {"closed_facts", x.closed_fact_ids}});
  return Response::Json({{"episodes", out}}, 201);
}

Response Recall(memory::MemoryStore& m, const Request& r) {
  auto t0 = std::chrono::steady_clock::now();
  auto body = Body(r);
  if (!body.ok()) return Fail(body.status());
  memory::RecallQuery q;
  q.agent = Agent(r, &*body);
  q.namespaces = {std::string(r.Param("namespace"))};
  int64_t as_of = 0;
  bool has_as_of = body->contains("as_of") && !(*body)["as_of"].is_null();
  for (absl::Status s : {Opt(*body, "query", q.text), Opt(*body, "k", q.k), Opt(*body, "as_of", as_of),
                         Opt(*body, "episodes", q.episodes), Opt(*body, "facts", q.facts),
                         Opt(*body, "include_archived", q.include_archived)})
    if (!s.ok()) return Fail(s);
  if (has_as_of) q.as_of_ms = as_of;
  if (body->contains("namespaces")) {
    const json& more = (*body)["namespaces"];
    if (!more.is_array()) return Fail(absl::InvalidArgumentError("'namespaces' must be an array of names"));
    for (const json& n : more) {
      if (!n.is_string()) return Fail(absl::InvalidArgumentError("'namespaces' must be an array of names"));
      if (n.get<std::string>() != q.namespaces[0]) q.namespaces.push_back(n.get<std::string>());
    }
  }
  auto res = m.Recall(q);
  if (!res.ok()) return Fail(res.status());
  json out = json::array();
  for (const memory::Recalled& x : *res) {
    json j = {{"kind", x.kind == memory::Recalled::Kind::kFact ? "fact" : "episode"},
              {"id", x.id},
              {"namespace", x.ns},
              {"score", x.score},
              {"text", x.text},
              {"author", x.author},
              {"time", x.time_ms},
              {"provenance", x.provenance},
              {"why", x.why}};
    if (!x.source.empty()) j["source"] = x.source;
    if (x.fact) j["fact"] = FactJson(*x.fact);
    out.push_back(std::move(j));
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return Response::Json({{"results", out}, {"took_ms", ms}});
}

Response ListFacts(memory::MemoryStore& m, const Request& r) {
  memory::FactQuery q;
  q.agent = Agent(r, nullptr);
  q.ns = std::string(r.Param("namespace"));
  if (auto s = r.Query("subject")) q.subject = std::string(*s);
  if (auto s = r.Query("predicate")) q.predicate = std::string(*s);
  if (auto s = r.Query("history")) q.history = *s == "true" || *s == "1";
  if (auto s = r.Query("as_of")) {
    try {
      size_t used = 0;
      q.as_of_ms = std::stoll(std::string(*s), &used);
      if (used != s->size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return Fail(absl::InvalidArgumentError("'as_of' must be milliseconds since the epoch"));
    }
  }
  auto res = m.Facts(q);
  if (!res.ok()) return Fail(res.status());
  json out = json::array();
  for (const auto& f : *res) out.push_back(FactJson(f));
  return Response::Json({{"facts", out}});
}

Response AddFact(memory::MemoryStore& m, const Request& r) {
  auto body = Body(r);
  if (!body.ok()) return Fail(body.status());
  memory::FactInput in;
  in.ns = std::string(r.Param("namespace"));
  in.author = Agent(r, &*body);
  int64_t valid_from = 0;
  for (absl::Status s : {Opt(*body, "subject", in.subject), Opt(*body, "predicate", in.predicate),
                         Opt(*body, "object", in.object), Opt(*body, "object_is_entity", in.object_is_entity),
                         Opt(*body, "negated", in.negated), Opt(*body, "valid_from", valid_from),
                         Opt(*body, "confidence", in.confidence)})
    if (!s.ok()) return Fail(s);
  if (body->contains("valid_from")) in.valid_from_ms = valid_from;
  if (!(in.confidence >= 0 && in.confidence <= 1))
    return Fail(absl::InvalidArgumentError("'confidence' must be in [0, 1]"));
  auto f = m.AddFact(in);
  if (!f.ok()) return Fail(f.status());
  return Response::Json(FactJson(*f), 201);
}

Response ListEntities(memory::MemoryStore& m, const Request& r) {
  std::string prefix;
  if (auto s = r.Query("prefix")) prefix = std::string(*s);
  size_t limit = 100;
  if (auto s = r.Query("limit")) {
    try {
      limit = std::stoul(std::string(*s));
    } catch (const std::exception&) {
      return Fail(absl::InvalidArgumentError("'limit' must be a positive integer"));
    }
    if (limit == 0 || limit > 10000) return Fail(absl::InvalidArgumentError("'limit' must be 1..10000"));
  }
  auto res = m.Entities(Agent(r, nullptr), std::string(r.Param("namespace")), prefix, limit);
  if (!res.ok()) return Fail(res.status());
  json out = json::array();
  for (const auto& e : *res)
    out.push_back({{"id", e.id}, {"name", e.name}, {"type", e.type}, {"aliases", e.aliases}, {"mentions", e.mentions}});
  return Response::Json({{"entities", out}});
}

Response Forget(memory::MemoryStore& m, const Request& r) {
  auto body = Body(r);
  if (!body.ok()) return Fail(body.status());
  uint64_t id = 0;
  if (!body->contains("episode")) return Fail(absl::InvalidArgumentError("'episode' (an id) is required"));
  if (absl::Status s = Opt(*body, "episode", id); !s.ok()) return Fail(s);
  const std::string agent = Agent(r, &*body);
  auto e = m.GetEpisode(agent, id);
  if (!e.ok()) return Fail(e.status());
  if (e->ns != r.Param("namespace"))
    return Fail(absl::NotFoundError(fmt::format("episode {} is not in namespace '{}'", id, std::string(r.Param("namespace")))));
  if (absl::Status s = m.Forget(agent, id); !s.ok()) return Fail(s);
  return Response::Json({{"forgotten", id}});
}

}  // namespace

void AddMemoryRoutes(Router& router, memory::MemoryStore& store) {
  memory::MemoryStore* m = &store;
  router.Add("POST", "/v1/memory/{namespace}", [m](const Request& r) { return CreateNamespace(*m, r); });
  router.Add("POST", "/v1/memory/{namespace}/episodes", [m](const Request& r) { return AddEpisodes(*m, r); });
  router.Add("POST", "/v1/memory/{namespace}/recall", [m](const Request& r) { return Recall(*m, r); });
  router.Add("GET", "/v1/memory/{namespace}/facts", [m](const Request& r) { return ListFacts(*m, r); });
  router.Add("POST", "/v1/memory/{namespace}/facts", [m](const Request& r) { return AddFact(*m, r); });
  router.Add("GET", "/v1/memory/{namespace}/entities", [m](const Request& r) { return ListEntities(*m, r); });
  router.Add("POST", "/v1/memory/{namespace}/forget", [m](const Request& r) { return Forget(*m, r); });
}

}  // namespace cairn::server
