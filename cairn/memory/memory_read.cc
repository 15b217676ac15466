// MemoryStore: lookups (episodes, facts, entities, relations), pinning and forgetting.
#include <algorithm>

#include <fmt/format.h>

#include "cairn/base/status.h"
#include "cairn/memory/internal/store_impl.h"
#include "cairn/memory/memory.h"

namespace cairn::memory {

using internal::Conn;
using internal::InTransaction;
using internal::Stmt;

namespace {

constexpr char kFactColumns[] =
    "SELECT f.id, f.ns, f.author, f.subject, e.name, f.predicate, f.object, f.object_entity, f.valid_from,"
    " f.valid_to, f.recorded_at, f.superseded_at, f.superseded_by, f.confidence, f.hlc FROM facts f"
    " JOIN entities e ON e.id = f.subject";

Fact FactFromRow(const Stmt& s) {
  Fact f;
  f.id = static_cast<uint64_t>(s.Int(0));
  f.ns = s.Text(1);
  f.author = s.Text(2);
  f.subject_id = static_cast<uint64_t>(s.Int(3));
  f.subject = s.Text(4);
  f.predicate = s.Text(5);
  f.object = s.Text(6);
  f.object_id = static_cast<uint64_t>(s.Int(7));
  f.valid_from_ms = s.Int(8);
  if (!s.IsNull(9)) f.valid_to_ms = s.Int(9);
  f.recorded_at_ms = s.Int(10);
  if (!s.IsNull(11)) f.superseded_at_ms = s.Int(11);
  f.superseded_by = static_cast<uint64_t>(s.Int(12));
  f.confidence = s.Real(13);
  f.hlc = static_cast<uint64_t>(s.Int(14));
  return f;
}

absl::Status FillProvenance(Conn& db, Fact& f) {
  CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT episode FROM fact_sources WHERE fact = ? ORDER BY episode"));
  s.Bind(1, f.id);
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    f.episodes.push_back(static_cast<uint64_t>(s.Int(0)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Fact> MemoryStore::Impl::LoadFact(Conn& db, uint64_t id) const {
  Fact f;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare(std::string(kFactColumns) + " WHERE f.id = ?"));
    s.Bind(1, id);
    CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::NotFoundError(fmt::format("fact {} not found", id));
    f = FactFromRow(s);
  }
  CAIRN_RETURN_IF_ERROR(FillProvenance(db, f));
  return f;
}

absl::StatusOr<Episode> MemoryStore::Impl::LoadEpisode(Conn& db, uint64_t id) const {
  CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT ns, author, time_ms, content, source, importance, pinned,"
                                            " archived, kind, hlc, summarizes FROM episodes WHERE id = ?"));
  s.Bind(1, id);
  CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError(fmt::format("episode {} not found", id));
  Episode e;
  e.id = id;
  e.ns = s.Text(0);
  e.author = s.Text(1);
  e.time_ms = s.Int(2);
  e.content = s.Text(3);
  e.source = s.Text(4);
  e.importance = s.Real(5);
  e.pinned = s.Int(6) != 0;
  e.archived = s.Int(7) != 0;
  e.kind = s.Text(8);
  e.hlc = static_cast<uint64_t>(s.Int(9));
  const std::string ids = s.Text(10);
  for (size_t i = 0; i < ids.size();) {
    size_t j = ids.find(',', i);
    if (j == std::string::npos) j = ids.size();
    if (j > i) e.summarizes.push_back(std::stoull(ids.substr(i, j - i)));
    i = j + 1;
  }
  return e;
}

absl::StatusOr<Episode> MemoryStore::GetEpisode(const std::string& agent, uint64_t id) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  CAIRN_ASSIGN_OR_RETURN(Episode e, impl_->LoadEpisode(*impl_->rdb, id));
  CAIRN_RETURN_IF_ERROR(impl_->CheckAccess(*impl_->rdb, agent, e.ns, false));
  return e;
}

absl::StatusOr<std::vector<Fact>> MemoryStore::Facts(const FactQuery& query) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  Conn& db = *impl_->rdb;
  CAIRN_RETURN_IF_ERROR(impl_->CheckAccess(db, query.agent, query.ns, false));
  uint64_t subject = 0;
  if (!query.subject.empty()) {
    CAIRN_ASSIGN_OR_RETURN(Stmt a, db.Prepare("SELECT entity FROM aliases WHERE ns = ? AND alias = ?"));
    a.BindAll(query.ns, NormalizeName(query.subject));
    CAIRN_ASSIGN_OR_RETURN(bool row, a.Step());
    if (!row) return std::vector<Fact>{};
    subject = static_cast<uint64_t>(a.Int(0));
  }
  // One statement covers every combination: a zero subject / empty predicate matches all.
  std::string sql = std::string(kFactColumns) +
                    " WHERE f.ns = ?1 AND (?2 = 0 OR f.subject = ?2) AND (?3 = '' OR f.predicate = ?3)";
  if (!query.history) {
    sql += query.as_of_ms ? " AND f.valid_from <= ?4 AND (f.valid_to IS NULL OR f.valid_to > ?4)"
                          : " AND f.valid_to IS NULL AND ?4 = ?4";
  } else {
    sql += " AND ?4 = ?4";
  }
  sql += " ORDER BY f.subject, f.predicate, f.valid_from, f.hlc LIMIT ?5";
  std::vector<Fact> out;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare(sql));
    s.BindAll(query.ns, subject, query.predicate, query.as_of_ms.value_or(0), static_cast<int64_t>(query.limit));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(FactFromRow(s));
    }
  }
  for (Fact& f : out) CAIRN_RETURN_IF_ERROR(FillProvenance(db, f));
  return out;
}

absl::StatusOr<std::vector<Entity>> MemoryStore::Entities(const std::string& agent, const std::string& ns,
                                                          const std::string& name_prefix, size_t limit) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  Conn& db = *impl_->rdb;
  CAIRN_RETURN_IF_ERROR(impl_->CheckAccess(db, agent, ns, false));
  std::vector<Entity> out;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT id, name, type, mentions FROM entities WHERE ns = ?1 AND"
                                              " lower(substr(name, 1, length(?2))) = ?2 ORDER BY mentions DESC, id"
                                              " LIMIT ?3"));
    s.BindAll(ns, NormalizeName(name_prefix), static_cast<int64_t>(limit));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      Entity e;
      e.id = static_cast<uint64_t>(s.Int(0));
      e.ns = ns;
      e.name = s.Text(1);
      e.type = s.Text(2);
      e.mentions = static_cast<uint64_t>(s.Int(3));
      out.push_back(std::move(e));
    }
  }
  for (Entity& e : out) {
    CAIRN_ASSIGN_OR_RETURN(Stmt a, db.Prepare("SELECT alias FROM aliases WHERE entity = ? ORDER BY alias"));
    a.Bind(1, e.id);
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, a.Step());
      if (!row) break;
      e.aliases.push_back(a.Text(0));
    }
  }
  return out;
}

absl::StatusOr<std::vector<Relation>> MemoryStore::Relations(const std::string& agent, uint64_t entity_id) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  Conn& db = *impl_->rdb;
  std::string ns;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT ns FROM entities WHERE id = ?"));
    s.Bind(1, entity_id);
    CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::NotFoundError(fmt::format("entity {} not found", entity_id));
    ns = s.Text(0);
  }
  CAIRN_RETURN_IF_ERROR(impl_->CheckAccess(db, agent, ns, false));
  std::vector<Relation> out;
  // The weight is the graph's: the row's, or the last one relation_log holds for it.
  CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT src, dst, predicate, weight, rowid FROM relations WHERE src = ?1"
                                            " UNION ALL SELECT src, dst, predicate, weight, rowid FROM relations"
                                            " WHERE dst = ?1"));
  s.Bind(1, entity_id);
  {
    std::shared_lock<std::shared_mutex> g(impl_->graph_mu);
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      const double weight = impl_->graph.Weight(s.Int(4)).value_or(s.Real(3));
      out.push_back({static_cast<uint64_t>(s.Int(0)), static_cast<uint64_t>(s.Int(1)), s.Text(2), weight});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Relation& a, const Relation& b) {
    return std::tie(b.weight, a.src, a.dst) < std::tie(a.weight, b.src, b.dst);
  });
  return out;
}

absl::Status MemoryStore::Pin(const std::string& agent, uint64_t episode_id, bool pinned) {
  std::lock_guard<std::mutex> l(impl_->write_mu);
  Impl& im = *impl_;
  return InTransaction(*im.wdb, [&]() -> absl::Status {
    CAIRN_ASSIGN_OR_RETURN(Episode e, im.LoadEpisode(*im.wdb, episode_id));
    CAIRN_RETURN_IF_ERROR(im.CheckAccess(*im.wdb, agent, e.ns, true));
    // Pinning restores the importance decay took away, and brings it back from the archive.
    CAIRN_ASSIGN_OR_RETURN(Stmt u, im.wdb->Prepare("UPDATE episodes SET pinned = ?, importance = CASE WHEN ? THEN"
                                                   " base_importance ELSE importance END, archived = CASE WHEN ?"
                                                   " THEN 0 ELSE archived END WHERE id = ?"));
    return u.BindAll(pinned, pinned, pinned, episode_id).Run();
  });
}

absl::Status MemoryStore::Forget(const std::string& agent, uint64_t episode_id) {
  std::lock_guard<std::mutex> l(impl_->write_mu);
  Impl& im = *impl_;
  Conn& db = *im.wdb;
  std::vector<uint64_t> dead_facts;
  im.mention_deletes.clear();
  absl::Status s = InTransaction(db, [&]() -> absl::Status {
    CAIRN_ASSIGN_OR_RETURN(Episode e, im.LoadEpisode(db, episode_id));
    CAIRN_RETURN_IF_ERROR(im.CheckAccess(db, agent, e.ns, true));
    {
      CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT fact FROM fact_sources WHERE episode = ?1 AND NOT EXISTS"
                                                " (SELECT 1 FROM fact_sources o WHERE o.fact = fact_sources.fact"
                                                " AND o.episode != ?1)"));
      q.Bind(1, episode_id);
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        dead_facts.push_back(static_cast<uint64_t>(q.Int(0)));
      }
    }
    std::vector<std::tuple<std::string, uint64_t, std::string>> timelines;
    for (uint64_t f : dead_facts) {
      CAIRN_ASSIGN_OR_RETURN(Fact fact, im.LoadFact(db, f));
      if (IsSingleValued(fact.predicate)) timelines.emplace_back(fact.ns, fact.subject_id, fact.predicate);
      CAIRN_ASSIGN_OR_RETURN(Stmt d, db.Prepare("DELETE FROM facts WHERE id = ?"));
      CAIRN_RETURN_IF_ERROR(d.Bind(1, f).Run());
    }
    {
      CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT entity FROM mentions WHERE episode = ?"));
      q.Bind(1, episode_id);
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        im.mention_deletes.emplace_back(static_cast<uint64_t>(q.Int(0)), episode_id);
      }
    }
    for (const char* sql : {"DELETE FROM fact_sources WHERE episode = ?", "DELETE FROM mentions WHERE episode = ?",
                            "DELETE FROM episodes_fts WHERE rowid = ?", "DELETE FROM episodes WHERE id = ?"}) {
      CAIRN_ASSIGN_OR_RETURN(Stmt d, db.Prepare(sql));
      CAIRN_RETURN_IF_ERROR(d.Bind(1, episode_id).Run());
    }
    RememberResult ignored;
    for (const auto& [ns, subject, predicate] : timelines)
      CAIRN_RETURN_IF_ERROR(im.Retimeline(ns, subject, predicate, im.NowMs(), ignored));
    return absl::OkStatus();
  });
  if (s.ok()) im.ApplyCommitted();
  im.mention_deletes.clear();
  if (!s.ok()) return s;
  std::vector<uint64_t> ids{episode_id};
  for (uint64_t f : dead_facts) ids.push_back(f | kFactBit);
  CAIRN_RETURN_IF_ERROR(im.DrainVectors());  // the points may still be queued
  for (uint64_t id : ids) {
    absl::Status d = im.vectors->Delete(id);
    if (!d.ok() && !absl::IsNotFound(d)) return d;
  }
  return absl::OkStatus();
}

size_t MemoryStore::EpisodeCount() const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  absl::StatusOr<Stmt> s = impl_->rdb->Prepare("SELECT count(*) FROM episodes");
  if (!s.ok()) return 0;
  absl::StatusOr<bool> row = s->Step();
  return row.ok() && *row ? static_cast<size_t>(s->Int(0)) : 0;
}

}  // namespace cairn::memory
