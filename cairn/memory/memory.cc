#include "cairn/memory/memory.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <tuple>

#include <fmt/format.h>

#include "cairn/base/status.h"
#include "cairn/memory/internal/bm25.h"
#include "cairn/memory/internal/store_impl.h"

namespace cairn::memory {

using internal::Conn;
using internal::InTransaction;
using internal::Stmt;

namespace {

constexpr const char* kSchema[] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE namespaces(name TEXT PRIMARY KEY, owner TEXT NOT NULL, shared INTEGER NOT NULL, hlc INTEGER)",
    "CREATE TABLE acl(ns TEXT NOT NULL, agent TEXT NOT NULL, can_read INTEGER NOT NULL, can_write INTEGER NOT NULL,"
    " PRIMARY KEY(ns, agent))",
    "CREATE TABLE episodes(id INTEGER PRIMARY KEY, ns TEXT NOT NULL, author TEXT NOT NULL, time_ms INTEGER NOT NULL,"
    " content TEXT NOT NULL, source TEXT NOT NULL, importance REAL NOT NULL, base_importance REAL NOT NULL,"
    " pinned INTEGER NOT NULL, archived INTEGER NOT NULL, kind TEXT NOT NULL, hlc INTEGER NOT NULL,"
    " recorded_ms INTEGER NOT NULL, summarized_into INTEGER, summarizes TEXT)",
    "CREATE INDEX episodes_ns_time ON episodes(ns, time_ms)",
    "CREATE VIRTUAL TABLE episodes_fts USING fts5(content, context, date, speaker UNINDEXED,"
    " tokenize='porter unicode61')",  // columns: index_text.cc
    "CREATE TABLE entities(id INTEGER PRIMARY KEY, ns TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,"
    " mentions INTEGER NOT NULL DEFAULT 0, hlc INTEGER NOT NULL)",
    "CREATE TABLE aliases(ns TEXT NOT NULL, alias TEXT NOT NULL, entity INTEGER NOT NULL, PRIMARY KEY(ns, alias))",
    "CREATE INDEX aliases_entity ON aliases(entity)",
    // Link tables without a rowid: each row lives in its primary key's B-tree alone (with a
    // rowid it is written to the table and to the key's index both).
    "CREATE TABLE mentions(episode INTEGER NOT NULL, entity INTEGER NOT NULL, PRIMARY KEY(episode, entity))"
    " WITHOUT ROWID",
    // No index by entity: recall reads an entity's newest mentions from memory
    // (mention_index.h), and each batch would write a page of that index per entity it names.
    "CREATE TABLE relations(ns TEXT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL, predicate TEXT NOT NULL,"
    " weight REAL NOT NULL, PRIMARY KEY(src, dst, predicate))",
    // No index holds the weight: each weight change would move its entries (the strongest
    // relations are read from memory, relation_graph.h).
    "CREATE INDEX relations_dst ON relations(dst)",
    // A relation's weight is the last one logged here for its rowid, else its row's
    // (FlushPending appends, FoldRelationLog folds; see MemoryOptions::relation_log_fold_rows).
    "CREATE TABLE relation_log(rel INTEGER NOT NULL, weight REAL NOT NULL)",
    "CREATE TABLE facts(id INTEGER PRIMARY KEY, ns TEXT NOT NULL, author TEXT NOT NULL, subject INTEGER NOT NULL,"
    " predicate TEXT NOT NULL, object TEXT NOT NULL, object_key TEXT NOT NULL, object_entity INTEGER NOT NULL,"
    " valid_from INTEGER NOT NULL, valid_to INTEGER, recorded_at INTEGER NOT NULL, superseded_at INTEGER,"
    " superseded_by INTEGER NOT NULL DEFAULT 0, retracted INTEGER NOT NULL DEFAULT 0, confidence REAL NOT NULL,"
    " hlc INTEGER NOT NULL)",
    // With the object and valid_to: a statement is checked against the current fact with the
    // same value in one seek (facts_sp without them read every earlier value of a subject's
    // predicate, thousands for a busy "likes", and facts_spo every closed version with that
    // value); its prefix serves the (ns, subject, predicate) reads.
    "CREATE INDEX facts_spov ON facts(ns, subject, predicate, object_key, valid_to)",
    // A single-valued fact's versions in timeline order (LinkVersion finds a new version's
    // neighbours in two seeks instead of reading the whole history).
    "CREATE INDEX facts_timeline ON facts(ns, subject, predicate, valid_from, hlc, author)",
    // With valid_to: recall reads an entity's current facts in id order, and a busy place or
    // employer is the object of thousands of closed facts that an index on the entity alone
    // made it read one by one before finding 50 current ones.
    "CREATE INDEX facts_object_valid ON facts(object_entity, valid_to)",
    "CREATE INDEX facts_subject_valid ON facts(subject, valid_to)",
    "CREATE TABLE fact_sources(fact INTEGER NOT NULL, episode INTEGER NOT NULL, PRIMARY KEY(fact, episode))"
    " WITHOUT ROWID",
    "CREATE INDEX fact_sources_episode ON fact_sources(episode)",
};

absl::Status CheckOrCreateSchema(Conn& db) {
  int64_t n = 0;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt tables, db.Prepare("SELECT count(*) FROM sqlite_master WHERE type='table'"));
    CAIRN_ASSIGN_OR_RETURN(bool row, tables.Step());
    if (row) n = tables.Int(0);
  }
  if (n == 0) {
    return InTransaction(db, [&]() -> absl::Status {
      for (const char* sql : kSchema) CAIRN_RETURN_IF_ERROR(db.Exec(sql));
      for (const auto& [key, value] : {std::pair<std::string, std::string>{"format", kFormat},
                                       {"schema_version", std::to_string(kSchemaVersion)}}) {
        CAIRN_ASSIGN_OR_RETURN(Stmt ins, db.Prepare("INSERT INTO meta(key, value) VALUES (?, ?)"));
        CAIRN_RETURN_IF_ERROR(ins.BindAll(key, value).Run());
      }
      return absl::OkStatus();
    });
  }
  auto foreign = [&](std::string_view why) {
    return absl::FailedPreconditionError(
        fmt::format("'{}' is not a cairn memory store ({}); refusing to use it", db.path(), why));
  };
  auto get = [&](const char* key) -> absl::StatusOr<std::string> {
    absl::StatusOr<Stmt> q = db.Prepare("SELECT value FROM meta WHERE key = ?");
    if (!q.ok()) return foreign("no meta table");
    q->Bind(1, key);
    CAIRN_ASSIGN_OR_RETURN(bool r, q->Step());
    return r ? q->Text(0) : std::string();
  };
  CAIRN_ASSIGN_OR_RETURN(std::string format, get("format"));
  CAIRN_ASSIGN_OR_RETURN(std::string version, get("schema_version"));
  if (format != kFormat) return foreign(fmt::format("format '{}'", format));
  if (version == "2" || version == "3") {
    // Version 3 adds relation_log; version 4 drops the mentions_entity index (mention_index.h).
    // Nothing else about the tables changed.
    CAIRN_RETURN_IF_ERROR(InTransaction(db, [&]() -> absl::Status {
      if (version == "2")
        CAIRN_RETURN_IF_ERROR(db.Exec("CREATE TABLE relation_log(rel INTEGER NOT NULL, weight REAL NOT NULL)"));
      CAIRN_RETURN_IF_ERROR(db.Exec("DROP INDEX IF EXISTS mentions_entity"));
      CAIRN_ASSIGN_OR_RETURN(Stmt up, db.Prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'"));
      return up.BindAll(std::to_string(kSchemaVersion)).Run();
    }));
    version = std::to_string(kSchemaVersion);
  }
  if (version != std::to_string(kSchemaVersion))
    return absl::FailedPreconditionError(fmt::format(
        "memory store '{}' has schema version {}; this build reads version {}", db.path(), version, kSchemaVersion));
  // Indexes recall's graph signal reads (an entity's current facts) and the write path's
  // facts_spov (which replaces facts_sp and facts_spo) and facts_timeline; stores made
  // before they were added get them here. The relations' weight indexes go (the strongest
  // relations are read from memory now); relations_dst serves Relations().
  for (const char* sql : {"CREATE INDEX IF NOT EXISTS facts_subject_valid ON facts(subject, valid_to)",
                          "DROP INDEX IF EXISTS facts_subject",
                          "CREATE INDEX IF NOT EXISTS facts_object_valid ON facts(object_entity, valid_to)",
                          "DROP INDEX IF EXISTS facts_object",
                          "CREATE INDEX IF NOT EXISTS facts_spov ON facts(ns, subject, predicate, object_key,"
                          " valid_to)",
                          "DROP INDEX IF EXISTS facts_sp",
                          "DROP INDEX IF EXISTS facts_spo",
                          "CREATE INDEX IF NOT EXISTS facts_timeline ON facts(ns, subject, predicate, valid_from, hlc,"
                          " author)",
                          "CREATE INDEX IF NOT EXISTS relations_dst ON relations(dst)",
                          "DROP INDEX IF EXISTS relations_src_weight",
                          "DROP INDEX IF EXISTS relations_dst_weight"})
    CAIRN_RETURN_IF_ERROR(db.Exec(sql));
  return absl::OkStatus();
}

std::string JoinIds(const std::vector<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d += static_cast<double>(a[i]) * b[i];
  return d;  // both normalized
}

}  // namespace

absl::Status ValidateNamespaceName(const std::string& ns) {
  if (ns.empty() || ns.size() > 128)
    return absl::InvalidArgumentError(fmt::format("namespace must be 1..128 characters, got {}", ns.size()));
  for (char c : ns) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':'))
      return absl::InvalidArgumentError(
          fmt::format("namespace '{}' has '{}'; allowed are letters, digits and _ - . :", ns, c));
  }
  return absl::OkStatus();
}

MemoryStore::MemoryStore(std::string dir, MemoryOptions options) : dir_(std::move(dir)), impl_(new Impl) {
  impl_->options = std::move(options);
}
MemoryStore::~MemoryStore() {
  if (impl_) impl_->StopVectorWriter();
}

absl::StatusOr<std::unique_ptr<MemoryStore>> MemoryStore::Open(const std::string& dir, MemoryOptions options) {
  if (options.dim < 8 || options.dim > 4096)
    return absl::InvalidArgumentError(fmt::format("memory: dim must be 8..4096, got {}", options.dim));
  if (options.hnsw_m < 2 || options.hnsw_m > 64 || options.hnsw_ef_construction < 1 ||
      options.hnsw_ef_construction > 10000)
    return absl::InvalidArgumentError(fmt::format(
        "memory: hnsw_m must be 2..64 and hnsw_ef_construction 1..10000, got {} and {}", options.hnsw_m,
        options.hnsw_ef_construction));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::FailedPreconditionError(fmt::format("memory: cannot create '{}': {}", dir, ec.message()));
  std::unique_ptr<MemoryStore> store(new MemoryStore(dir, std::move(options)));
  Impl& im = *store->impl_;
  im.clock = im.options.clock ? im.options.clock : &SystemClock::Get();
  im.hlc = std::make_unique<HybridClock>(*im.clock);
  im.extractor = im.options.extractor ? im.options.extractor : std::make_shared<RuleExtractor>();
  im.embedder = std::make_unique<vector::HashingEmbedder>(im.options.dim);
  const std::string path = (std::filesystem::path(dir) / "memory.db").string();
  CAIRN_ASSIGN_OR_RETURN(im.wdb, Conn::Open(path, true, im.options.sync_full, im.options.mmap_bytes,
                                               im.options.write_cache_bytes, im.options.wal_checkpoint_bytes));
  CAIRN_RETURN_IF_ERROR(CheckOrCreateSchema(*im.wdb));
  CAIRN_ASSIGN_OR_RETURN(im.rdb, Conn::Open(path, false, im.options.sync_full, im.options.mmap_bytes));
  CAIRN_ASSIGN_OR_RETURN(im.ckdb, Conn::Open(path, false, im.options.sync_full));
  CAIRN_RETURN_IF_ERROR(internal::RegisterBoundedBm25(im.rdb->db()));
  {
    // The clock never goes behind what is stored (a restart with a clock stepped back).
    CAIRN_ASSIGN_OR_RETURN(Stmt s, im.wdb->Prepare("SELECT max(hlc) FROM episodes UNION ALL SELECT max(hlc) FROM facts"));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (!s.IsNull(0)) im.hlc->Observe(static_cast<uint64_t>(s.Int(0)));
    }
  }
  const std::string vdir = (std::filesystem::path(dir) / "vectors").string();
  vector::CollectionOptions copts;
  copts.fsync = vector::FsyncPolicy::kNever;  // SQLite is the source of truth; SyncVectors repairs
  if (std::filesystem::exists(vdir)) {
    absl::StatusOr<std::unique_ptr<vector::Collection>> c = vector::Collection::Open(vdir, copts);
    if (!c.ok())
      return absl::Status(c.status().code(),
                          fmt::format("memory store '{}': vector index: {}", dir, std::string(c.status().message())));
    im.vectors = std::move(*c);
    if (im.vectors->settings().dim != im.options.dim)
      return absl::FailedPreconditionError(fmt::format("memory store '{}' embeds in {} dimensions, not {}", dir,
                                                       im.vectors->settings().dim, im.options.dim));
  } else {
    vector::CollectionSettings settings;
    settings.name = "memory";
    settings.dim = im.options.dim;
    settings.metric = vector::Metric::kCosine;
    settings.index = vector::IndexKind::kHnsw;
    settings.hnsw.m = im.options.hnsw_m;
    settings.hnsw.ef_construction = im.options.hnsw_ef_construction;
    settings.embedder = "none";
    CAIRN_ASSIGN_OR_RETURN(im.vectors, vector::Collection::Create(vdir, settings, copts));
  }
  {
    std::lock_guard<std::mutex> l(im.write_mu);
    CAIRN_RETURN_IF_ERROR(im.CatchUpWithOtherWriters());  // loads the graph
    CAIRN_RETURN_IF_ERROR(im.SyncVectors());
  }
  im.StartVectorWriter();
  return store;
}

// ---------------------------------------------------------------------------------------------
// Namespaces

absl::Status MemoryStore::Impl::CheckAccess(Conn& db, const std::string& agent, const std::string& ns,
                                            bool write) const {
  CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT owner, shared FROM namespaces WHERE name = ?"));
  s.Bind(1, ns);
  CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError(fmt::format("memory namespace '{}' does not exist", ns));
  if (s.Text(0) == agent) return absl::OkStatus();
  const bool shared = s.Int(1) != 0;
  if (shared) {
    CAIRN_ASSIGN_OR_RETURN(Stmt a, db.Prepare("SELECT can_read, can_write FROM acl WHERE ns = ? AND agent = ?"));
    a.BindAll(ns, agent);
    CAIRN_ASSIGN_OR_RETURN(bool r, a.Step());
    if (r && (write ? a.Int(1) : a.Int(0)) != 0) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      fmt::format("agent '{}' may not {} memory namespace '{}'", agent, write ? "write" : "read", ns));
}

absl::Status MemoryStore::CreateNamespace(const std::string& name, const std::string& owner, bool shared) {
  CAIRN_RETURN_IF_ERROR(ValidateNamespaceName(name));
  if (owner.empty()) return absl::InvalidArgumentError("namespace owner must not be empty");
  std::lock_guard<std::mutex> l(impl_->write_mu);
  Conn& db = *impl_->wdb;
  return InTransaction(db, [&]() -> absl::Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT 1 FROM namespaces WHERE name = ?"));
    q.Bind(1, name);
    CAIRN_ASSIGN_OR_RETURN(bool exists, q.Step());
    if (exists) return absl::AlreadyExistsError(fmt::format("memory namespace '{}' already exists", name));
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT INTO namespaces(name, owner, shared, hlc) VALUES (?, ?, ?, ?)"));
    return s.BindAll(name, owner, shared, impl_->hlc->Now()).Run();
  });
}

absl::Status MemoryStore::Grant(const std::string& ns, const std::string& owner, const std::string& agent, bool read,
                                bool write) {
  if (agent.empty()) return absl::InvalidArgumentError("grant: agent must not be empty");
  std::lock_guard<std::mutex> l(impl_->write_mu);
  Conn& db = *impl_->wdb;
  return InTransaction(db, [&]() -> absl::Status {
    CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT owner, shared FROM namespaces WHERE name = ?"));
    q.Bind(1, ns);
    CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return absl::NotFoundError(fmt::format("memory namespace '{}' does not exist", ns));
    if (q.Text(0) != owner)
      return absl::PermissionDeniedError(fmt::format("only the owner of '{}' may grant access to it", ns));
    if (q.Int(1) == 0)
      return absl::FailedPreconditionError(fmt::format("memory namespace '{}' is private; grants need a shared one", ns));
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("INSERT OR REPLACE INTO acl(ns, agent, can_read, can_write) VALUES (?, ?, ?, ?)"));
    return s.BindAll(ns, agent, read, write).Run();
  });
}

absl::StatusOr<NamespaceInfo> MemoryStore::GetNamespace(const std::string& ns) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  Conn& db = *impl_->rdb;
  CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT owner, shared FROM namespaces WHERE name = ?"));
  q.Bind(1, ns);
  CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return absl::NotFoundError(fmt::format("memory namespace '{}' does not exist", ns));
  NamespaceInfo info{ns, q.Text(0), q.Int(1) != 0, {}};
  CAIRN_ASSIGN_OR_RETURN(Stmt a, db.Prepare("SELECT agent, can_read, can_write FROM acl WHERE ns = ? ORDER BY agent"));
  a.Bind(1, ns);
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool r, a.Step());
    if (!r) break;
    info.acl[a.Text(0)] = {a.Int(1) != 0, a.Int(2) != 0};
  }
  return info;
}

std::vector<std::string> MemoryStore::ListNamespaces() const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  std::vector<std::string> out;
  absl::StatusOr<Stmt> q = impl_->rdb->Prepare("SELECT name FROM namespaces ORDER BY name");
  if (!q.ok()) return out;
  while (true) {
    absl::StatusOr<bool> r = q->Step();
    if (!r.ok() || !*r) break;
    out.push_back(q->Text(0));
  }
  return out;
}

absl::Status MemoryStore::CheckRead(const std::string& agent, const std::string& ns) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  return impl_->CheckAccess(*impl_->rdb, agent, ns, false);
}
absl::Status MemoryStore::CheckWrite(const std::string& agent, const std::string& ns) const {
  std::lock_guard<std::mutex> l(impl_->read_mu);
  return impl_->CheckAccess(*impl_->rdb, agent, ns, true);
}

absl::Status MemoryStore::Impl::EnsureWritable(const std::string& agent, const std::string& ns) {
  CAIRN_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  if (agent.empty()) return absl::InvalidArgumentError("memory: the author (agent) must not be empty");
  std::pair<std::string, std::string> key(agent, ns);
  if (writable.count(key)) return absl::OkStatus();
  absl::Status s = CheckAccess(*wdb, agent, ns, true);
  if (absl::IsNotFound(s)) {
    CAIRN_ASSIGN_OR_RETURN(Stmt ins,
                           wdb->Prepare("INSERT INTO namespaces(name, owner, shared, hlc) VALUES (?, ?, 0, ?)"));
    s = ins.BindAll(ns, agent, hlc->Now()).Run();
  }
  if (s.ok()) writable.insert(std::move(key));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Entities

absl::StatusOr<MemoryStore::Impl::NsEntities*> MemoryStore::Impl::Entities(const std::string& ns) {
  auto it = entity_cache.find(ns);
  if (it != entity_cache.end()) return &it->second;
  NsEntities& e = entity_cache[ns];
  CAIRN_ASSIGN_OR_RETURN(Stmt a, wdb->Prepare("SELECT alias, entity FROM aliases WHERE ns = ?"));
  a.Bind(1, ns);
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool r, a.Step());
    if (!r) break;
    e.aliases[a.Text(0)] = static_cast<uint64_t>(a.Int(1));
  }
  CAIRN_ASSIGN_OR_RETURN(Stmt n, wdb->Prepare("SELECT id, name, type FROM entities WHERE ns = ?"));
  n.Bind(1, ns);
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool r, n.Step());
    if (!r) break;
    absl::StatusOr<std::vector<float>> v = embedder->Embed(NormalizeName(n.Text(1)));
    e.types[static_cast<uint64_t>(n.Int(0))] = n.Text(2);
    if (v.ok()) e.names.emplace_back(static_cast<uint64_t>(n.Int(0)), std::move(*v));
  }
  return &e;
}

// Resolution order: a known alias; a single word that starts the name of exactly one
// known person ("Mel" -> "Melanie"); a name whose embedding is within
// options.entity_similarity of a known one; else a new entity. Matches by prefix or
// similarity record the new spelling as an alias.
absl::StatusOr<uint64_t> MemoryStore::Impl::ResolveEntity(const std::string& ns, const std::string& name,
                                                         const std::string& type) {
  const std::string key = NormalizeName(name);
  if (key.empty()) return absl::InvalidArgumentError("entity name is empty");
  CAIRN_ASSIGN_OR_RETURN(NsEntities * cache, Entities(ns));
  if (auto it = cache->aliases.find(key); it != cache->aliases.end()) return it->second;
  uint64_t match = 0;
  if (key.find(' ') == std::string::npos && key.size() >= 3 && type == "person") {
    int found = 0;
    for (const auto& [alias, id] : cache->aliases) {
      if (alias.size() > key.size() && alias.compare(0, key.size(), key) == 0 && alias.find(' ') == std::string::npos &&
          cache->types[id] == "person" && id != match) {
        ++found;
        match = id;
      }
    }
    if (found != 1) match = 0;
  }
  absl::StatusOr<std::vector<float>> v = embedder->Embed(key);
  if (match == 0 && v.ok()) {
    double best = options.entity_similarity;
    for (const auto& [id, emb] : cache->names) {
      double c = Cosine(*v, emb);
      if (c >= best) best = c, match = id;
    }
  }
  if (match == 0) {
    CAIRN_ASSIGN_OR_RETURN(Stmt ins, wdb->Prepare("INSERT INTO entities(ns, name, type, hlc) VALUES (?, ?, ?, ?)"));
    CAIRN_RETURN_IF_ERROR(ins.BindAll(ns, name, type, hlc->Now()).Run());
    match = static_cast<uint64_t>(wdb->LastInsertId());
    cache->types[match] = type;
    if (v.ok()) cache->names.emplace_back(match, std::move(*v));
  }
  CAIRN_ASSIGN_OR_RETURN(Stmt al, wdb->Prepare("INSERT OR IGNORE INTO aliases(ns, alias, entity) VALUES (?, ?, ?)"));
  CAIRN_RETURN_IF_ERROR(al.BindAll(ns, key, match).Run());
  cache->aliases[key] = match;
  return match;
}

// ---------------------------------------------------------------------------------------------
// Write path

absl::StatusOr<uint64_t> MemoryStore::Impl::RememberOne(const Episode& in, RememberResult& result,
                                                       std::vector<vector::Point>& points) {
  if (in.content.empty() || in.content.size() > (64u << 10))
    return absl::InvalidArgumentError(fmt::format("episode content must be 1..65536 bytes, got {}", in.content.size()));
  if (!(in.importance >= 0 && in.importance <= 1))
    return absl::InvalidArgumentError(fmt::format("episode importance must be in [0, 1], got {}", in.importance));
  if (in.kind != "episode" && in.kind != "summary")
    return absl::InvalidArgumentError(fmt::format("episode kind must be 'episode' or 'summary', got '{}'", in.kind));
  CAIRN_RETURN_IF_ERROR(EnsureWritable(in.author, in.ns));
  const uint64_t stamp = in.hlc ? (hlc->Observe(in.hlc), in.hlc) : hlc->Now();
  const int64_t now = NowMs();
  const int64_t t = in.time_ms != 0 ? in.time_ms : now;
  CAIRN_ASSIGN_OR_RETURN(
      Stmt ins, wdb->Prepare("INSERT INTO episodes(ns, author, time_ms, content, source, importance, base_importance,"
                             " pinned, archived, kind, hlc, recorded_ms, summarizes) VALUES (?,?,?,?,?,?,?,?,0,?,?,?,?)"));
  CAIRN_RETURN_IF_ERROR(ins.BindAll(in.ns, in.author, t, in.content, in.source, in.importance, in.importance,
                                    in.pinned, in.kind, stamp, now, JoinIds(in.summarizes))
                            .Run());
  const uint64_t id = static_cast<uint64_t>(wdb->LastInsertId());
  result.episode_id = id;
  CAIRN_RETURN_IF_ERROR(IndexText(in, id, t));
  {
    vector::Point p;  // embedded by UpsertVectors
    p.id = id;
    p.text = in.content;
    p.attributes = {{"ns", in.ns}, {"t", t}};
    points.push_back(std::move(p));
  }

  CAIRN_ASSIGN_OR_RETURN(NsEntities * cache, Entities(in.ns));
  ExtractContext ctx;
  ctx.speaker = in.speaker.empty() ? in.author : in.speaker;
  ctx.is_known_alias = [cache](const std::string& lower) { return cache->aliases.count(lower) > 0; };
  CAIRN_ASSIGN_OR_RETURN(Extraction ex, extractor->Extract(in.content, ctx));
  std::map<std::string, uint64_t> resolved;  // normalized name -> entity
  auto resolve = [&](const std::string& name, const std::string& type) -> absl::StatusOr<uint64_t> {
    std::string key = NormalizeName(name);
    if (auto it = resolved.find(key); it != resolved.end()) return it->second;
    CAIRN_ASSIGN_OR_RETURN(uint64_t eid, ResolveEntity(in.ns, name, type));
    resolved[key] = eid;
    return eid;
  };
  std::vector<uint64_t> mentioned;
  for (const ExtractedEntity& e : ex.entities) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t eid, resolve(e.name, e.type));
    if (std::find(mentioned.begin(), mentioned.end(), eid) == mentioned.end()) mentioned.push_back(eid);
  }
  // The speaker is part of what was said, even when unnamed in it.
  if (!in.speaker.empty()) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t eid, resolve(in.speaker, "person"));
    if (std::find(mentioned.begin(), mentioned.end(), eid) == mentioned.end()) mentioned.push_back(eid);
  }
  for (uint64_t eid : mentioned) {
    CAIRN_ASSIGN_OR_RETURN(Stmt m, wdb->Prepare("INSERT OR IGNORE INTO mentions(episode, entity) VALUES (?, ?)"));
    CAIRN_RETURN_IF_ERROR(m.BindAll(id, eid).Run());
    mention_writes.emplace_back(eid, id);
    ++pending.mentions[eid];
  }
  static const std::string kMentionedWith = "mentioned_with";
  const size_t cap = std::min<size_t>(mentioned.size(), 8);
  for (size_t a = 0; a < cap; ++a) {
    for (size_t b = a + 1; b < cap; ++b)
      AddRelation(in.ns, std::min(mentioned[a], mentioned[b]), std::max(mentioned[a], mentioned[b]), kMentionedWith);
  }
  result.entity_ids = mentioned;
  for (const ExtractedFact& f : ex.facts) {
    FactWrite w;
    w.ns = in.ns;
    w.author = in.author;
    CAIRN_ASSIGN_OR_RETURN(w.subject_id, resolve(f.subject, "person"));
    w.predicate = f.predicate;
    w.object = f.object;
    if (f.object_is_entity) {
      CAIRN_ASSIGN_OR_RETURN(w.object_id, resolve(f.object, "thing"));
    }
    w.negated = f.negated;
    w.valid_from_ms = t;
    w.confidence = f.confidence;
    w.hlc = stamp;
    w.episode_id = id;
    CAIRN_RETURN_IF_ERROR(ApplyFact(w, result, points));
  }
  return id;
}

absl::StatusOr<vector::Point> MemoryStore::Impl::FactPoint(uint64_t fact_id) {
  CAIRN_ASSIGN_OR_RETURN(Stmt s, wdb->Prepare("SELECT f.ns, e.name, f.predicate, f.object, f.valid_from FROM facts f"
                                              " JOIN entities e ON e.id = f.subject WHERE f.id = ?"));
  s.Bind(1, fact_id);
  CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError(fmt::format("fact {} not found", fact_id));
  std::string pred = s.Text(2);
  std::replace(pred.begin(), pred.end(), '_', ' ');
  vector::Point p;
  p.id = fact_id | kFactBit;
  p.text = s.Text(1) + " " + pred + " " + s.Text(3);  // embedded by UpsertVectors
  p.attributes = {{"ns", s.Text(0)}, {"t", s.Int(4)}, {"fact", int64_t{1}}};
  return p;
}

absl::Status MemoryStore::Impl::ApplyFact(const FactWrite& w, RememberResult& result,
                                          std::vector<vector::Point>& points) {
  if (w.predicate.empty() || w.object.empty()) return absl::InvalidArgumentError("fact predicate and object are required");
  const std::string key = NormalizeName(w.object);
  const int64_t now = NowMs();
  // The current fact with the same value, if any.
  uint64_t same_id = 0;
  double same_conf = 0;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt q, wdb->Prepare("SELECT id, confidence FROM facts WHERE ns = ? AND subject = ? AND"
                                                " predicate = ? AND object_key = ? AND valid_to IS NULL"
                                                " AND retracted = 0 ORDER BY id LIMIT 1"));
    q.BindAll(w.ns, w.subject_id, w.predicate, key);
    CAIRN_ASSIGN_OR_RETURN(bool same, q.Step());
    if (same) same_id = static_cast<uint64_t>(q.Int(0)), same_conf = q.Real(1);
  }
  if (w.negated) {
    if (same_id == 0) return absl::OkStatus();  // nothing to contradict
    CAIRN_ASSIGN_OR_RETURN(Stmt u, wdb->Prepare("UPDATE facts SET valid_to = max(valid_from, ?), superseded_at = ?,"
                                                " retracted = 1 WHERE id = ?"));
    CAIRN_RETURN_IF_ERROR(u.BindAll(w.valid_from_ms, now, same_id).Run());
    if (w.episode_id) {
      CAIRN_ASSIGN_OR_RETURN(Stmt src, wdb->Prepare("INSERT OR IGNORE INTO fact_sources(fact, episode) VALUES (?, ?)"));
      CAIRN_RETURN_IF_ERROR(src.BindAll(same_id, w.episode_id).Run());
    }
    result.closed_fact_ids.push_back(same_id);
    return absl::OkStatus();
  }
  uint64_t fact_id = same_id;
  if (same_id != 0) {
    // Confirmation: more evidence for the same value.
    CAIRN_ASSIGN_OR_RETURN(Stmt u, wdb->Prepare("UPDATE facts SET confidence = ? WHERE id = ?"));
    CAIRN_RETURN_IF_ERROR(u.BindAll(1 - (1 - same_conf) * (1 - w.confidence), same_id).Run());
  } else {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt ins, wdb->Prepare("INSERT INTO facts(ns, author, subject, predicate, object, object_key, object_entity,"
                               " valid_from, recorded_at, confidence, hlc) VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
    CAIRN_RETURN_IF_ERROR(ins.BindAll(w.ns, w.author, w.subject_id, w.predicate, w.object, key, w.object_id,
                                      w.valid_from_ms, now, w.confidence, w.hlc)
                              .Run());
    fact_id = static_cast<uint64_t>(wdb->LastInsertId());
    if (w.object_id != 0) AddRelation(w.ns, w.subject_id, w.object_id, w.predicate);
    if (IsSingleValued(w.predicate)) {
      CAIRN_RETURN_IF_ERROR(
          LinkVersion(w.ns, w.subject_id, w.predicate, fact_id, w.valid_from_ms, w.hlc, w.author, now, result));
    }
  }
  if (w.episode_id) {
    CAIRN_ASSIGN_OR_RETURN(Stmt src, wdb->Prepare("INSERT OR IGNORE INTO fact_sources(fact, episode) VALUES (?, ?)"));
    CAIRN_RETURN_IF_ERROR(src.BindAll(fact_id, w.episode_id).Run());
  }
  result.fact_ids.push_back(fact_id);
  if (same_id == 0) {
    // A confirmation changes only the confidence, which the vector does not hold.
    CAIRN_ASSIGN_OR_RETURN(vector::Point p, FactPoint(fact_id));
    points.push_back(std::move(p));
  }
  return absl::OkStatus();
}

// A single-valued fact's versions, retracted ones included, are ordered by (valid_from, hlc,
// author, id); each version that is not retracted holds until the next one begins (its
// valid_to and superseded_by name it), and the last one holds until further notice. A
// retracted version keeps the end its negation gave it, and the version before it still
// ends where it began: taking back "works at Globex" does not make the employer before it
// current again. The result depends only on the set of versions, not on the order they
// arrived in.
//
// Retimeline relinks a whole timeline (after Forget deleted versions from it); LinkVersion
// links one new version between its two neighbours, which is the same when the timeline
// was linked before (every write keeps it so), in two index seeks however long the history.
absl::Status MemoryStore::Impl::Retimeline(const std::string& ns, uint64_t subject_id, const std::string& predicate,
                                           int64_t now, RememberResult& result) {
  struct V {
    uint64_t id;
    int64_t from;
    std::optional<int64_t> to;
    uint64_t hlc;
    std::string author;
    uint64_t superseded_by;
    bool retracted;
  };
  std::vector<V> vs;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, wdb->Prepare("SELECT id, valid_from, valid_to, hlc, author, superseded_by, retracted"
                                                " FROM facts WHERE ns = ? AND subject = ? AND predicate = ?"));
    s.BindAll(ns, subject_id, predicate);
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      V v{static_cast<uint64_t>(s.Int(0)), s.Int(1), std::nullopt, static_cast<uint64_t>(s.Int(3)), s.Text(4),
          static_cast<uint64_t>(s.Int(5)), s.Int(6) != 0};
      if (!s.IsNull(2)) v.to = s.Int(2);
      vs.push_back(std::move(v));
    }
  }
  std::sort(vs.begin(), vs.end(), [](const V& a, const V& b) {
    return std::tie(a.from, a.hlc, a.author, a.id) < std::tie(b.from, b.hlc, b.author, b.id);
  });
  for (size_t i = 0; i < vs.size(); ++i) {
    if (vs[i].retracted) continue;
    std::optional<int64_t> to;
    uint64_t by = 0;
    if (i + 1 < vs.size()) to = vs[i + 1].from, by = vs[i + 1].id;
    CAIRN_RETURN_IF_ERROR(SetVersionEnd(vs[i].id, vs[i].to, vs[i].superseded_by, to, by, now, result));
  }
  return absl::OkStatus();
}

absl::Status MemoryStore::Impl::SetVersionEnd(uint64_t id, std::optional<int64_t> old_to, uint64_t old_by,
                                              std::optional<int64_t> to, uint64_t by, int64_t now,
                                              RememberResult& result) {
  if (to == old_to && by == old_by) return absl::OkStatus();
  CAIRN_ASSIGN_OR_RETURN(Stmt u, wdb->Prepare("UPDATE facts SET valid_to = ?, superseded_at = ?, superseded_by = ?"
                                              " WHERE id = ?"));
  if (to) {
    u.Bind(1, *to).Bind(2, now);
    if (!old_to) result.closed_fact_ids.push_back(id);
  } else {
    u.BindNull(1).BindNull(2);
  }
  return u.Bind(3, by).Bind(4, id).Run();
}

absl::Status MemoryStore::Impl::LinkVersion(const std::string& ns, uint64_t subject_id, const std::string& predicate,
                                            uint64_t id, int64_t from, uint64_t stamp, const std::string& author,
                                            int64_t now, RememberResult& result) {
  // The neighbours in (valid_from, hlc, author, id) order, read from facts_timeline (both
  // read before anything is written).
  struct Neighbour {
    uint64_t id = 0;
    int64_t from = 0;
    std::optional<int64_t> to;
    uint64_t by = 0;
    bool retracted = false;
  };
  std::optional<Neighbour> prev, next;
  for (int side = 0; side < 2; ++side) {
    CAIRN_ASSIGN_OR_RETURN(
        Stmt q, wdb->Prepare(side == 0 ? "SELECT id, valid_from, valid_to, superseded_by, retracted FROM facts"
                                         " WHERE ns = ?1 AND subject = ?2 AND predicate = ?3 AND (valid_from, hlc,"
                                         " author, id) < (?4, ?5, ?6, ?7) ORDER BY valid_from DESC, hlc DESC,"
                                         " author DESC, id DESC LIMIT 1"
                                       : "SELECT id, valid_from, valid_to, superseded_by, retracted FROM facts"
                                         " WHERE ns = ?1 AND subject = ?2 AND predicate = ?3 AND (valid_from, hlc,"
                                         " author, id) > (?4, ?5, ?6, ?7) ORDER BY valid_from, hlc, author, id"
                                         " LIMIT 1"));
    q.BindAll(ns, subject_id, predicate, from, stamp, author, id);
    CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) continue;
    Neighbour n{static_cast<uint64_t>(q.Int(0)), q.Int(1), std::nullopt, static_cast<uint64_t>(q.Int(3)),
                q.Int(4) != 0};
    if (!q.IsNull(2)) n.to = q.Int(2);
    (side == 0 ? prev : next) = n;
  }
  if (prev && !prev->retracted) CAIRN_RETURN_IF_ERROR(SetVersionEnd(prev->id, prev->to, prev->by, from, id, now, result));
  if (next) CAIRN_RETURN_IF_ERROR(SetVersionEnd(id, std::nullopt, 0, next->from, next->id, now, result));
  return absl::OkStatus();
}

absl::Status MemoryStore::Flush() { return impl_->DrainVectors(); }

absl::StatusOr<RememberResult> MemoryStore::Remember(const Episode& episode) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<RememberResult> r, RememberBatch(std::span<const Episode>(&episode, 1)));
  return std::move(r[0]);
}

absl::StatusOr<std::vector<RememberResult>> MemoryStore::RememberBatch(std::span<const Episode> episodes) {
  std::lock_guard<std::mutex> l(impl_->write_mu);
  std::vector<RememberResult> results(episodes.size());
  std::vector<vector::Point> points;
  absl::Status s = impl_->WriteTx([&]() -> absl::Status {
    for (size_t i = 0; i < episodes.size(); ++i) {
      absl::StatusOr<uint64_t> id = impl_->RememberOne(episodes[i], results[i], points);
      if (!id.ok())
        return episodes.size() == 1 ? id.status()
                                    : absl::Status(id.status().code(),
                                                   fmt::format("episodes[{}]: {}", i, std::string(id.status().message())));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) {
    impl_->entity_cache.clear();  // it may hold rolled-back entities
    return s;
  }
  CAIRN_RETURN_IF_ERROR(impl_->EnqueueVectors(std::move(points)));
  return results;
}

absl::StatusOr<Fact> MemoryStore::AddFact(const FactInput& in) {
  uint64_t fact_id = 0;
  {
    std::lock_guard<std::mutex> l(impl_->write_mu);
    Impl& im = *impl_;
    RememberResult result;
    std::vector<vector::Point> points;
    absl::Status s = im.WriteTx([&]() -> absl::Status {
      CAIRN_RETURN_IF_ERROR(im.EnsureWritable(in.author, in.ns));
      if (in.subject.empty()) return absl::InvalidArgumentError("fact subject is required");
      Impl::FactWrite w;
      w.ns = in.ns;
      w.author = in.author;
      CAIRN_ASSIGN_OR_RETURN(w.subject_id, im.ResolveEntity(in.ns, in.subject, "thing"));
      w.predicate = in.predicate;
      w.object = in.object;
      if (in.object_is_entity && !in.object.empty()) {
        CAIRN_ASSIGN_OR_RETURN(w.object_id, im.ResolveEntity(in.ns, in.object, "thing"));
      }
      w.negated = in.negated;
      w.valid_from_ms = in.valid_from_ms.value_or(im.NowMs());
      w.confidence = in.confidence;
      // A stamp from elsewhere is kept as it is (it decides conflicts) and merged into the clock.
      w.hlc = in.hlc ? (im.hlc->Observe(in.hlc), in.hlc) : im.hlc->Now();
      return im.ApplyFact(w, result, points);
    });
    if (!s.ok()) {
      im.entity_cache.clear();
      return s;
    }
    CAIRN_RETURN_IF_ERROR(im.EnqueueVectors(std::move(points)));
    if (!result.fact_ids.empty()) fact_id = result.fact_ids[0];
    else if (!result.closed_fact_ids.empty()) fact_id = result.closed_fact_ids[0];
    else return absl::NotFoundError("the negated fact does not hold now; nothing to close");
  }
  std::lock_guard<std::mutex> l(impl_->read_mu);
  return impl_->LoadFact(*impl_->rdb, fact_id);
}

}  // namespace cairn::memory
