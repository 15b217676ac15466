// cairn/server/memory_api.h — the HTTP API of agent memory (cairn/memory).
//
// The acting agent is the "agent" field of a POST body, or the `agent` query parameter of
// a GET, or else the X-Cairn-Agent header; it is asserted by the client, not authenticated.
// Times are milliseconds since the Unix epoch.
//
//   POST /v1/memory/{ns}                create a namespace
//        {"owner": "a", "shared": true, "grants": {"b": {"read": true, "write": false}}?}
//        → 201 {"namespace", "owner", "shared", "grants"}; 409 when it exists
//   POST /v1/memory/{ns}/episodes       remember (a missing namespace becomes the agent's private one)
//        {"agent", "content", "time"?, "source"?, "speaker"?, "importance"?, "pinned"?}
//        or {"agent", "episodes": [{...}, ...]} (one transaction)
//        → 201 {"episodes": [{"id", "entities", "facts", "closed_facts"}]}
//   POST /v1/memory/{ns}/recall
//        {"agent", "query", "k"?: 10, "as_of"?, "namespaces"?: [more], "episodes"?: true,
//         "facts"?: true, "include_archived"?: false}
//        → {"results": [{"kind": "episode"|"fact", "id", "namespace", "score", "text", "author",
//                        "time", "source"?, "provenance", "why", "fact"?}], "took_ms"}
//   GET  /v1/memory/{ns}/facts?agent=&subject=&predicate=&as_of=&history=true
//        → {"facts": [fact]}   fact = {"id", "subject", "predicate", "object", "valid_from",
//        "valid_to", "recorded_at", "superseded_at", "confidence", "author", "episodes"}
//   POST /v1/memory/{ns}/facts          state a fact
//        {"agent", "subject", "predicate", "object", "object_is_entity"?, "negated"?,
//         "valid_from"?, "confidence"?} → 201 fact
//   GET  /v1/memory/{ns}/entities?agent=&prefix=&limit=
//        → {"entities": [{"id", "name", "type", "aliases", "mentions"}]}
//   POST /v1/memory/{ns}/forget         {"agent", "episode": id} → {"forgotten": id}
// Errors: 400 bad input, 403 not allowed (PermissionDenied), 404 unknown namespace/episode.
// Thread-safety: as MemoryStore (fully).
#pragma once

#include "cairn/memory/memory.h"
#include "cairn/server/router.h"

namespace cairn::server {

// Registers the routes above on `router`; `store` must outlive it.
void AddMemoryRoutes(Router& router, memory::MemoryStore& store);

}  // namespace cairn::server
