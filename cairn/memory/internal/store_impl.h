// MemoryStore's private state, shared by the files that implement it (memory.cc: open,
// namespaces, write path; memory_relations.cc: the write side's counters, relation graph
// and relation_log; memory_vectors.cc: the vector index; memory_read.cc: lookups;
// recall.cc: read path; consolidate.cc: consolidation).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "cairn/memory/internal/mention_index.h"
#include "cairn/memory/internal/relation_graph.h"
#include "cairn/memory/internal/sqlite.h"
#include "cairn/memory/memory.h"
#include "cairn/vector/collection.h"
#include "cairn/vector/embedder.h"

namespace cairn::memory {

inline constexpr int kSchemaVersion = 4;  // 3: relation_log; 4: no mentions_entity index
inline constexpr char kFormat[] = "cairn-memory";
// Vector point ids: episodes use their id, facts set the top bit.
inline constexpr uint64_t kFactBit = 1ull << 63;

struct MemoryStore::Impl {
  MemoryOptions options;
  const Clock* clock = nullptr;
  std::unique_ptr<HybridClock> hlc;
  std::shared_ptr<const Extractor> extractor;
  std::unique_ptr<vector::HashingEmbedder> embedder;
  std::unique_ptr<vector::Collection> vectors;

  std::mutex write_mu;
  std::unique_ptr<internal::Conn> wdb;  // guarded by write_mu
  mutable std::mutex read_mu;
  std::unique_ptr<internal::Conn> rdb;  // guarded by read_mu
  // Used by the vector writer thread only: after each batch of vectors it copies the WAL's
  // committed pages into the database (a passive checkpoint, which waits for no one), so
  // the writer's transactions do not pay for checkpoints and the WAL stays short for
  // readers (pages still in the WAL are read with a copy each; the database file is
  // mapped). The writer's own automatic checkpoint (wal_checkpoint_bytes) is the backstop.
  std::unique_ptr<internal::Conn> ckdb;

  // Per namespace: alias -> entity id, and entity name embeddings for resolution by
  // similarity. Loaded lazily; guarded by write_mu.
  struct NsEntities {
    std::unordered_map<std::string, uint64_t> aliases;
    std::vector<std::pair<uint64_t, std::vector<float>>> names;
    std::unordered_map<uint64_t, std::string> types;
  };
  std::map<std::string, NsEntities, std::less<>> entity_cache;

  int64_t NowMs() const { return clock->NowNanos() / 1000000; }

  // Counters the write path only adds to (entity mentions, relation weights): summed in
  // memory over a transaction and written once per row at its end (FlushPending), which
  // leaves the committed state the same as adding them one by one. Guarded by write_mu.
  struct Pending {
    std::map<uint64_t, int64_t> mentions;  // entity -> mentions to add
    // (src, dst, predicate) -> index in relation_order; written in first-write order, so new
    // rows get the rowids (and ties in weight the order) they would get one by one.
    std::map<std::tuple<uint64_t, uint64_t, std::string>, size_t> relations;
    struct RelationAdd {
      std::string ns;  // of the first write
      uint64_t src, dst;
      std::string predicate;
      double weight;
    };
    std::vector<RelationAdd> relation_order;
    void Clear() {
      mentions.clear();
      relations.clear();
      relation_order.clear();
    }
  };
  Pending pending;
  // The relations FlushPending wrote, as the table now holds them; applied to `graph` once
  // their transaction has committed (WriteTx). Guarded by write_mu.
  struct RelationWrite {
    int64_t rowid;
    uint64_t src, dst;
    std::string predicate;
    double weight;
  };
  std::vector<RelationWrite> relation_writes;
  // The (entity, episode) mentions the transaction inserted and deleted; applied to
  // `mention_index` once it has committed. Guarded by write_mu.
  std::vector<std::pair<uint64_t, uint64_t>> mention_writes, mention_deletes;
  // The relations table in memory, for recall's strongest-neighbour reads (see
  // relation_graph.h), and the mentions table by entity, for its newest-mentions reads (see
  // mention_index.h); both loaded at open. Written with write_mu and graph_mu (exclusive)
  // held, read with graph_mu shared.
  mutable std::shared_mutex graph_mu;
  internal::RelationGraph graph;
  internal::MentionIndex mention_index;
  absl::Status LoadGraph();  // the graph and the mention index
  void ApplyCommitted();     // relation_writes and the mention changes, after a commit
  // Another process may write the store too (SQLite's lock serializes them). At the start of
  // each write transaction, when the database changed since this process last looked
  // (PRAGMA data_version), the entity cache, the graph and the mention index are read again, so none misses
  // what the other process wrote. Guarded by write_mu.
  int64_t seen_data_version = -1;  // none yet: Open loads
  // Rows in relation_log (set by LoadGraph, counted up by FlushPending); FoldRelationLog
  // writes the logged weights into relations once it reaches the fold size.
  uint64_t relation_log_rows = 0;
  absl::Status FoldRelationLog();
  absl::Status CatchUpWithOtherWriters();
  // (author, namespace) pairs found writable in the current transaction (nothing else can
  // change the rules while it holds the write lock). Guarded by write_mu.
  std::set<std::pair<std::string, std::string>> writable;

  // Runs `body` in a write transaction (write_mu held), flushing the pending counters
  // before the commit and applying the relations and mentions written to `graph` and
  // `mention_index` after it.
  template <typename F>
  absl::Status WriteTx(F&& body) {
    pending.Clear();
    writable.clear();
    relation_writes.clear();
    mention_writes.clear();
    mention_deletes.clear();
    absl::Status s = internal::InTransaction(*wdb, [&]() -> absl::Status {
      if (absl::Status c = CatchUpWithOtherWriters(); !c.ok()) return c;
      if (relation_log_rows >= options.relation_log_fold_rows) {
        if (absl::Status f = FoldRelationLog(); !f.ok()) return f;
      }
      if (absl::Status b = body(); !b.ok()) return b;
      return FlushPending();
    });
    if (s.ok()) ApplyCommitted();
    relation_writes.clear();
    mention_writes.clear();
    mention_deletes.clear();
    pending.Clear();
    writable.clear();
    return s;
  }
  absl::Status FlushPending();
  void AddRelation(const std::string& ns, uint64_t src, uint64_t dst, const std::string& predicate);

  // Namespace rules, on the given connection.
  absl::Status CheckAccess(internal::Conn& db, const std::string& agent, const std::string& ns, bool write) const;

  // Write path pieces (write_mu held, inside a transaction).
  absl::Status EnsureWritable(const std::string& agent, const std::string& ns);
  absl::StatusOr<NsEntities*> Entities(const std::string& ns);
  absl::StatusOr<uint64_t> ResolveEntity(const std::string& ns, const std::string& name, const std::string& type);
  // Adds episode `id` (at time t) to episodes_fts (index_text.cc).
  absl::Status IndexText(const Episode& e, uint64_t id, int64_t t);
  absl::StatusOr<uint64_t> RememberOne(const Episode& e, RememberResult& result, std::vector<vector::Point>& points);
  struct FactWrite {
    std::string ns, author;
    uint64_t subject_id = 0;
    std::string predicate, object;
    uint64_t object_id = 0;
    bool negated = false;
    int64_t valid_from_ms = 0;
    double confidence = 0;
    uint64_t hlc = 0;
    uint64_t episode_id = 0;  // 0: stated directly
  };
  absl::Status ApplyFact(const FactWrite& w, RememberResult& result, std::vector<vector::Point>& points);
  // A single-valued fact's timeline (memory.cc): relinks it whole, or links one new version.
  absl::Status Retimeline(const std::string& ns, uint64_t subject_id, const std::string& predicate, int64_t now,
                          RememberResult& result);
  absl::Status LinkVersion(const std::string& ns, uint64_t subject_id, const std::string& predicate, uint64_t id,
                           int64_t from, uint64_t hlc, const std::string& author, int64_t now, RememberResult& result);
  // Sets a version's end (valid_to, superseded_by; superseded_at = now when it ends) if it
  // changed, reporting a version that was current and is not any more in `result`.
  absl::Status SetVersionEnd(uint64_t id, std::optional<int64_t> old_to, uint64_t old_by, std::optional<int64_t> to,
                             uint64_t by, int64_t now, RememberResult& result);
  // Write-path points carry their text and no vector; UpsertVectors embeds them (on the
  // vector writer thread) and drops those with nothing to embed.
  absl::StatusOr<vector::Point> FactPoint(uint64_t fact_id);
  absl::Status UpsertVectors(std::vector<vector::Point> points);
  absl::Status SyncVectors();

  // Vectors are inserted by a thread of their own, after the SQLite commit that
  // acknowledged their write: the next transaction's SQL runs while the HNSW graph takes
  // the last one's points (each is a large share of remember's time). Readers and the
  // writes that touch vectors themselves wait for the queue first (DrainVectors), so every
  // recall sees every acknowledged write. A crash loses at most the queue, which
  // SyncVectors rebuilds from SQLite on open. A failed insert is logged and returned by the
  // next EnqueueVectors or DrainVectors call (reopening the store rebuilds what is missing).
  void StartVectorWriter();
  void StopVectorWriter();
  absl::Status EnqueueVectors(std::vector<vector::Point> points);
  absl::Status DrainVectors();
  std::mutex vq_mu;
  std::condition_variable vq_cv;       // work arrived, or stop
  std::condition_variable vq_idle_cv;  // the queue ran empty
  std::deque<std::vector<vector::Point>> vq;  // guarded by vq_mu
  bool vq_busy = false;                       // guarded by vq_mu
  bool vq_stop = false;                       // guarded by vq_mu
  absl::Status vq_error;                      // guarded by vq_mu
  std::thread vq_thread;

  // Read helpers on the read connection (read_mu held).
  // Recall's BM25 match expression, cut down for a big store (recall.cc).
  // The postings budget of the main BM25 pass and the smaller one of the passes that only
  // add to it (pseudo-relevance feedback, the matches that credit the turns before them).
  static constexpr int64_t kBm25Postings = 4096;
  static constexpr int64_t kBm25SecondaryPostings = 1024;
  absl::StatusOr<std::string> BoundedMatch(internal::Conn& db, const std::string& match, int64_t postings,
                                           bool* newest_only);
  // word -> episodes holding it (counted up to `cap`), and the store size when counted;
  // guarded by read_mu.
  struct TermCount {
    int64_t count, episodes, cap;
  };
  std::unordered_map<std::string, TermCount> term_counts;
  absl::StatusOr<Fact> LoadFact(internal::Conn& db, uint64_t id) const;
  absl::StatusOr<Episode> LoadEpisode(internal::Conn& db, uint64_t id) const;
};

absl::Status ValidateNamespaceName(const std::string& ns);

}  // namespace cairn::memory
