// Long-term memory for agents: episodes, bi-temporal facts, an entity graph, namespaces
// with access rules, and hybrid recall.
//
// Model
//   Episode   what an agent saw or did: namespace, author, time (world time, ms since the
//             epoch), content, source, importance in [0, 1], pinned. Consolidation adds
//             summary episodes (kind "summary") whose provenance lists what they condense.
//   Fact      subject (an entity) – predicate – object (an entity or a literal), with
//             valid_from/valid_to (when it held in the world; valid_to unset = still holds)
//             and recorded_at/superseded_at (when this store learned it and when it closed
//             it), confidence, author and provenance episodes. Facts are never deleted by
//             contradiction: a newer value of a single-valued predicate (extractor.h
//             IsSingleValued) closes the older one's validity.
//   Entity    name, type, aliases (matched case-insensitively); relations are the edges
//             between entities: facts whose object is an entity, and "mentioned_with"
//             co-occurrence counts from episodes.
//   Namespace private (only its owner reads and writes) or shared (the owner, plus the
//             agents granted read and/or write). Writing to a namespace that does not exist
//             creates it private to the writer. Agent identities are asserted by the caller,
//             not authenticated here.
//
// Ordering and conflicts. Every write gets a hybrid logical clock stamp (hlc.h). For one
// subject and single-valued predicate, the facts' timeline is ordered by (valid_from, hlc,
// author): each fact's validity ends where the next one with another object begins; two
// facts with the same valid_from resolve to the later stamp, and the earlier one keeps an
// empty validity (valid_to == valid_from) and a superseded_at, so both stay in history. The
// result does not depend on the order in which conflicting writes arrive.
//
// Storage: one directory holding memory.db (SQLite, WAL journal, synchronous=FULL by
// default, schema version checked on open; a file that is not a memory store or is
// damaged fails Open with a message naming it) and vectors/ (a cairn/vector collection
// of episode and fact embeddings, HashingEmbedder by default). SQLite is the source of
// truth: a write is acknowledged once its transaction commits; the vector collection is
// written after it without fsync, on a thread of the store's own (the next write's SQL runs
// meanwhile; Recall waits for it), and brought up to date from SQLite on Open, so a kill -9
// between the two loses nothing.
//
// Thread-safety: MemoryStore is thread-safe. Writes are serialized by a mutex (and by
// SQLite's lock across processes); reads run on their own connection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/clock.h"
#include "cairn/memory/extractor.h"
#include "cairn/memory/hlc.h"

struct sqlite3;

namespace cairn::vector {
class Collection;
class HashingEmbedder;
}  // namespace cairn::vector

namespace cairn::memory {

struct Episode {
  uint64_t id = 0;           // assigned by Remember
  std::string ns;            // namespace: 1..128 chars of [A-Za-z0-9_.:/-]
  std::string author;        // the agent that wrote it (non-empty)
  std::string speaker;       // who "I" is in the content (a chat participant); default author
  int64_t time_ms = 0;       // when it happened; 0 = now
  std::string content;       // non-empty, at most 64 KiB
  std::string source;        // free form (a channel, a message id)
  double importance = 0.5;   // [0, 1]; consolidation decays it unless pinned
  bool pinned = false;
  std::string kind = "episode";  // or "summary" (consolidation)
  bool archived = false;
  uint64_t hlc = 0;          // assigned
  std::vector<uint64_t> summarizes;  // summaries: the episodes condensed
};

struct Fact {
  uint64_t id = 0;
  std::string ns;
  std::string author;
  uint64_t subject_id = 0;
  std::string subject;       // the subject entity's name
  std::string predicate;
  std::string object;
  uint64_t object_id = 0;    // 0 when the object is a literal
  int64_t valid_from_ms = 0;
  std::optional<int64_t> valid_to_ms;
  int64_t recorded_at_ms = 0;
  std::optional<int64_t> superseded_at_ms;
  uint64_t superseded_by = 0;
  double confidence = 0;
  uint64_t hlc = 0;
  std::vector<uint64_t> episodes;  // provenance

  bool ValidAt(int64_t t) const { return valid_from_ms <= t && (!valid_to_ms || *valid_to_ms > t); }
  bool Current() const { return !valid_to_ms.has_value(); }
};

struct Entity {
  uint64_t id = 0;
  std::string ns;
  std::string name;
  std::string type;
  std::vector<std::string> aliases;  // normalized (lower case), the name's own included
  uint64_t mentions = 0;
};

struct Relation {
  uint64_t src = 0, dst = 0;
  std::string predicate;  // a fact's predicate or "mentioned_with"
  double weight = 0;      // co-occurrences, or 1 per fact
};

struct NamespaceInfo {
  std::string name;
  std::string owner;
  bool shared = false;
  std::map<std::string, std::pair<bool, bool>> acl;  // agent -> (read, write)
};

struct RememberResult {
  uint64_t episode_id = 0;
  std::vector<uint64_t> entity_ids;
  std::vector<uint64_t> fact_ids;       // facts written or confirmed
  std::vector<uint64_t> closed_fact_ids;  // facts whose validity this write closed
};

// A fact stated directly (not extracted).
struct FactInput {
  std::string ns, author;
  std::string subject, predicate, object;
  bool object_is_entity = true;
  bool negated = false;                 // closes the matching current fact instead
  std::optional<int64_t> valid_from_ms;  // default: now
  double confidence = 1.0;
  uint64_t hlc = 0;                     // 0 = stamp now; a remote stamp merges into the clock
};

struct FactQuery {
  std::string agent;                    // must be able to read ns
  std::string ns;
  std::string subject;                  // optional: an entity name or alias
  std::string predicate;                // optional
  std::optional<int64_t> as_of_ms;      // facts valid then; unset: current facts
  bool history = false;                 // every version, closed ones included (ignores as_of)
  size_t limit = 1000;
};

struct RecallQuery {
  std::string agent;
  std::string text;
  size_t k = 10;                        // 1..1000
  std::optional<int64_t> as_of_ms;      // episodes up to then, facts valid then
  std::vector<std::string> namespaces;  // each must be readable by agent; non-empty
  bool episodes = true;
  bool facts = true;
  bool include_archived = false;
  // Weighted reciprocal-rank fusion: score = sum_signal w / (60 + rank). Recency and
  // importance rank the union of candidates the other signals found, whatever their
  // relevance, so they only break ties. BM25 leads by far: with the model-free hashing
  // embedder the vector and graph lists only reorder its near ties (larger weights lowered
  // recall on LoCoMo; docs/benchmarks.md, "Agent memory").
  double vector_weight = 0.03, bm25_weight = 1.0, graph_weight = 0.03;
  double recency_weight = 0.01, importance_weight = 0.01;
  // BM25 weight of the preceding episodes' text (MemoryOptions::context_episodes) against
  // 1 for the episode's own text.
  double context_weight = 0.4;
  // BM25 weight of the episode's day as words ("8 May 2023"; DateWords), for queries that
  // name a date.
  double date_weight = 2.0;
  // The BM25 score of episodes spoken by the first person the query names (a word equal to
  // an episode's speaker, or its first name) is multiplied by this: in "What did Alice tell
  // Bob about ...", Alice's own words come first. 1 turns it off.
  double speaker_boost = 2.0;
  // Pseudo-relevance feedback (RM3-style): the `feedback_terms` words that recur most in the
  // `feedback_docs` best BM25 matches are searched too, their BM25 scores added at
  // `feedback_weight`. It finds memories that use other words for the same thing. 0 terms
  // turns it off.
  size_t feedback_docs = 8, feedback_terms = 5;
  double feedback_weight = 0.3;
  // Credit from the episodes that follow: the i-th episode before a match of the query in an
  // episode's own text (in its namespace, within MemoryOptions::context_window_ms of it)
  // gains next_weights[i] times that match's BM25 score. In a dialogue the replies often
  // name what the turn before them said ("Ann: I finished it!" / "Ben: A marathon, wow!");
  // the mirror of the context field, which finds a reply by the words before it. At most 8
  // weights; empty turns it off.
  std::vector<double> next_weights = {0.25, 0.1};
  size_t candidates = 0;                // per signal; 0 = max(50, 4k)
};

struct Recalled {
  enum class Kind { kEpisode, kFact };
  Kind kind = Kind::kEpisode;
  uint64_t id = 0;
  std::string ns;
  double score = 0;
  std::string text;                     // the episode content, or "subject predicate object"
  std::string author;
  int64_t time_ms = 0;                  // episode time or fact valid_from
  std::string source;
  std::vector<uint64_t> provenance;     // a fact's episodes; a summary's sources
  std::vector<std::string> why;         // e.g. "vector#2", "bm25#1", "graph:Alice", "recency#5"
  std::optional<Fact> fact;
};

struct ConsolidateOptions {
  std::string agent;                    // consolidates the namespaces it may write
  std::vector<std::string> namespaces;  // empty: all of them
  std::optional<int64_t> now_ms;        // default: the clock
  int64_t older_than_ms = 7LL * 86400000;  // episodes older than this are summarized
  double half_life_days = 30;           // importance decay
  double archive_below = 0.05;          // archive episodes whose importance falls below
  size_t summary_sentences = 3;
};

struct ConsolidateReport {
  size_t summaries = 0, summarized = 0, decayed = 0, archived = 0;
};

struct MemoryOptions {
  size_t dim = 256;                     // embedding dimension (HashingEmbedder)
  bool sync_full = true;                // SQLite synchronous=FULL (power loss); NORMAL survives kill -9
  // SQLite reads the database through a memory map of up to this many bytes (SQLite caps it
  // at its build's limit, 2 GiB by default; 0 turns it off). Mapped pages are the OS page
  // cache's, shared and reclaimable, but count in the process's resident size once touched.
  uint64_t mmap_bytes = sizeof(void*) >= 8 ? (1ull << 30) : 0;
  // Page cache of the writing connection (SQLite's own default is 2 MB). Remember touches
  // index pages all over a large store; pages evicted before the WAL is checkpointed are
  // read back from the WAL with a copy each. Resident only as far as it fills.
  uint64_t write_cache_bytes = 64ull << 20;
  // The store's vector thread copies the WAL into the database after each batch (a passive
  // checkpoint, off the write transaction). This is the writer's own backstop: it
  // checkpoints when the WAL reaches this size (SQLite's default is 1,000 pages, 4 MB,
  // which would put a checkpoint inside most large batches). A longer WAL is replayed
  // after a crash, and readers copy the pages still in it.
  uint64_t wal_checkpoint_bytes = 64ull << 20;
  // A relation's new weight is appended to a log table (one sequential row) rather than
  // written into its row (a page anywhere in the table); once the log holds this many
  // rows, the next write folds it into the relations table in one pass and empties it.
  uint64_t relation_log_fold_rows = 65536;
  double entity_similarity = 0.92;      // cosine of name embeddings to merge entities
  // HNSW graph of the vector collection, used only when a store is created (an existing
  // store keeps the settings it was made with). Inserting is most of remember's cost and
  // grows with ef_construction; vector similarity is a low-weight signal of recall, so a
  // smaller candidate list than the vector subsystem's default (200) is enough.
  size_t hnsw_m = 16;
  size_t hnsw_ef_construction = 64;
  const Clock* clock = nullptr;         // default SystemClock
  std::shared_ptr<const Extractor> extractor;  // default RuleExtractor
  // BM25 indexes each episode together with the content of up to `context_episodes`
  // episodes of its namespace that precede it by at most `context_window_ms` (a
  // conversation's previous turns), in a second column that RecallQuery::context_weight
  // weighs: a reply ("Yes, every Sunday!") is found by the words of what it answers. Only
  // episodes already stored when it is written count; summaries get no context.
  size_t context_episodes = 2;
  int64_t context_window_ms = 30 * 60000;
};

// The UTC day of a time in ms since the epoch as words, "8 May 2023": what BM25 indexes as
// an episode's date.
std::string DateWords(int64_t ms);

class MemoryStore {
 public:
  // Opens (creating when missing) the store in directory `dir`.
  static absl::StatusOr<std::unique_ptr<MemoryStore>> Open(const std::string& dir, MemoryOptions options = {});
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Namespaces. Create fails with AlreadyExists; Grant needs the owner.
  absl::Status CreateNamespace(const std::string& name, const std::string& owner, bool shared);
  absl::Status Grant(const std::string& ns, const std::string& owner, const std::string& agent, bool read,
                     bool write);
  absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& ns) const;
  std::vector<std::string> ListNamespaces() const;
  // PermissionDenied naming the agent and namespace when not allowed; NotFound when absent.
  absl::Status CheckRead(const std::string& agent, const std::string& ns) const;
  absl::Status CheckWrite(const std::string& agent, const std::string& ns) const;

  // Write path: stores the episode, extracts and resolves entities and facts, indexes.
  absl::StatusOr<RememberResult> Remember(const Episode& episode);
  // The same for many episodes in one transaction (faster; all or nothing).
  absl::StatusOr<std::vector<RememberResult>> RememberBatch(std::span<const Episode> episodes);
  absl::StatusOr<Fact> AddFact(const FactInput& input);

  absl::StatusOr<Episode> GetEpisode(const std::string& agent, uint64_t id) const;
  absl::StatusOr<std::vector<Fact>> Facts(const FactQuery& query) const;
  absl::StatusOr<std::vector<Entity>> Entities(const std::string& agent, const std::string& ns,
                                               const std::string& name_prefix = "", size_t limit = 1000) const;
  absl::StatusOr<std::vector<Relation>> Relations(const std::string& agent, uint64_t entity_id) const;

  absl::StatusOr<std::vector<Recalled>> Recall(const RecallQuery& query) const;

  absl::StatusOr<ConsolidateReport> Consolidate(const ConsolidateOptions& options);
  absl::Status Pin(const std::string& agent, uint64_t episode_id, bool pinned);
  // Deletes the episode for good (from SQLite, BM25, vectors, mentions) and the facts that
  // have no other provenance. Unlike archiving, this is the explicit "forget".
  absl::Status Forget(const std::string& agent, uint64_t episode_id);

  // Waits until the vector index holds every acknowledged write (it is written on a thread
  // of its own after each commit; Recall waits for it by itself). Returns a failure of that
  // thread, if any.
  absl::Status Flush();

  size_t EpisodeCount() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Impl;
  MemoryStore(std::string dir, MemoryOptions options);
  std::string dir_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::memory
