// MemoryStore's entity graph on the write side: the counters a transaction sums in memory
// (mention counts, relation weights) and writes at its end (FlushPending), the in-memory
// relation graph and mention index that recall reads (LoadGraph; relation_graph.h,
// mention_index.h), the relation_log that
// takes the weight bumps and its fold into the relations table, and catching up with
// another process that wrote the store.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cairn/base/status.h"
#include "cairn/memory/internal/store_impl.h"

namespace cairn::memory {

using internal::Stmt;

void MemoryStore::Impl::AddRelation(const std::string& ns, uint64_t src, uint64_t dst, const std::string& predicate) {
  auto [it, inserted] =
      pending.relations.try_emplace(std::make_tuple(src, dst, predicate), pending.relation_order.size());
  if (inserted) pending.relation_order.push_back({ns, src, dst, predicate, 0.0});
  pending.relation_order[it->second].weight += 1;
}

absl::Status MemoryStore::Impl::LoadGraph() {
  std::unique_lock<std::shared_mutex> g(graph_mu);
  graph.Clear();
  CAIRN_ASSIGN_OR_RETURN(Stmt s, wdb->Prepare("SELECT rowid, src, dst, predicate, weight FROM relations"));
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    graph.Put(s.Int(0), static_cast<uint64_t>(s.Int(1)), static_cast<uint64_t>(s.Int(2)), s.Text(3), s.Real(4));
  }
  mention_index.Clear();
  {
    // In key order (episode, entity): each entity's episodes arrive ascending and append.
    CAIRN_ASSIGN_OR_RETURN(Stmt m, wdb->Prepare("SELECT episode, entity FROM mentions"));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, m.Step());
      if (!row) break;
      mention_index.Add(static_cast<uint64_t>(m.Int(1)), static_cast<uint64_t>(m.Int(0)));
    }
  }
  relation_log_rows = 0;
  CAIRN_ASSIGN_OR_RETURN(Stmt log, wdb->Prepare("SELECT rel, weight FROM relation_log ORDER BY rowid"));
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, log.Step());
    if (!row) break;
    graph.SetWeight(log.Int(0), log.Real(1));  // a relation it names is always in relations
    ++relation_log_rows;
  }
  return absl::OkStatus();
}

void MemoryStore::Impl::ApplyCommitted() {
  if (relation_writes.empty() && mention_writes.empty() && mention_deletes.empty()) return;
  std::unique_lock<std::shared_mutex> g(graph_mu);
  for (const RelationWrite& r : relation_writes) graph.Put(r.rowid, r.src, r.dst, r.predicate, r.weight);
  for (const auto& [entity, episode] : mention_deletes) mention_index.Remove(entity, episode);
  for (const auto& [entity, episode] : mention_writes) mention_index.Add(entity, episode);
}

absl::Status MemoryStore::Impl::FoldRelationLog() {
  // The graph holds every logged weight (LoadGraph applied the log; later writes applied
  // theirs after commit), so each logged relation gets its graph weight, once.
  std::vector<int64_t> rels;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, wdb->Prepare("SELECT DISTINCT rel FROM relation_log ORDER BY rel"));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      rels.push_back(s.Int(0));
    }
  }
  for (int64_t rel : rels) {
    std::optional<double> w = graph.Weight(rel);
    if (!w) return absl::InternalError(fmt::format("memory: relation_log names relation {}, which is unknown", rel));
    CAIRN_ASSIGN_OR_RETURN(Stmt u, wdb->Prepare("UPDATE relations SET weight = ?1 WHERE rowid = ?2"));
    CAIRN_RETURN_IF_ERROR(u.BindAll(*w, rel).Run());
  }
  CAIRN_RETURN_IF_ERROR(wdb->Exec("DELETE FROM relation_log"));
  relation_log_rows = 0;  // if this transaction rolls back, the next fold comes later: harmless
  return absl::OkStatus();
}

absl::Status MemoryStore::Impl::CatchUpWithOtherWriters() {
  CAIRN_ASSIGN_OR_RETURN(Stmt v, wdb->Prepare("PRAGMA data_version"));
  CAIRN_ASSIGN_OR_RETURN(bool row, v.Step());
  const int64_t version = row ? v.Int(0) : 0;
  if (version == seen_data_version) return absl::OkStatus();
  entity_cache.clear();
  CAIRN_RETURN_IF_ERROR(LoadGraph());
  seen_data_version = version;
  return absl::OkStatus();
}

absl::Status MemoryStore::Impl::FlushPending() {
  for (const auto& [eid, n] : pending.mentions) {
    CAIRN_ASSIGN_OR_RETURN(Stmt c, wdb->Prepare("UPDATE entities SET mentions = mentions + ? WHERE id = ?"));
    CAIRN_RETURN_IF_ERROR(c.BindAll(n, eid).Run());
  }
  for (const Pending::RelationAdd& a : pending.relation_order) {
    // A relation the graph holds gets its new weight appended to relation_log: a row at the
    // end of one table instead of a page anywhere in relations. (The graph changes only
    // under write_mu, which is held here, and is current: CatchUpWithOtherWriters.)
    if (std::optional<std::pair<int64_t, double>> cur = graph.Find(a.src, a.dst, a.predicate)) {
      const double weight = cur->second + a.weight;
      CAIRN_ASSIGN_OR_RETURN(Stmt u, wdb->Prepare("INSERT INTO relation_log(rel, weight) VALUES (?, ?)"));
      CAIRN_RETURN_IF_ERROR(u.BindAll(cur->first, weight).Run());
      ++relation_log_rows;
      relation_writes.push_back({cur->first, a.src, a.dst, a.predicate, weight});
      continue;
    }
    {
      CAIRN_ASSIGN_OR_RETURN(Stmt ins, wdb->Prepare("INSERT OR IGNORE INTO relations(ns, src, dst, predicate, weight)"
                                                    " VALUES (?, ?, ?, ?, ?)"));
      CAIRN_RETURN_IF_ERROR(ins.BindAll(a.ns, a.src, a.dst, a.predicate, a.weight).Run());
      if (wdb->Changes() == 1) {
        relation_writes.push_back({wdb->LastInsertId(), a.src, a.dst, a.predicate, a.weight});
        continue;
      }
    }
    // In the table but not in the graph, which CatchUpWithOtherWriters made current.
    return absl::InternalError(fmt::format("memory: relation ({}, {}, {}) is stored but not in the relation graph",
                                           a.src, a.dst, a.predicate));
  }
  pending.Clear();
  return absl::OkStatus();
}

}  // namespace cairn::memory
