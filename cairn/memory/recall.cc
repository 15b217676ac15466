// MemoryStore::Recall: hybrid retrieval over episodes and facts.
//
// Signals, each a ranked list of candidates:
//   vector      cosine similarity of the embedding of the query's content words (the
//               common question words below dropped) to episodes and facts
//   bm25        SQLite FTS5 bm25() over episode text (porter-stemmed words, OR-ed, a few
//               very common question words dropped), the preceding episodes' text weighted
//               context_weight, its day as words ("8 May 2023") date_weight; episodes of
//               the speaker the query names first score speaker_boost times more; then
//               the 2 episodes before each of the best matches of the episodes' own text
//               gain next_weights times that match's score (replies name what they answer);
//               one round of pseudo-relevance feedback (RecallQuery::feedback_*); in a big store the most common
//               words are left out past a budget of postings (Impl::BoundedMatch)
//   graph       entities named in the query (extractor + known aliases) and their
//               neighbours 1 and 2 hops away (relations, strongest first), weighted 1, 0.5,
//               0.25; an episode scores the sum of weight * idf over the entities it
//               mentions (idf = log(1 + episodes / mentions)), so rare names count most
//               (each entity's newest kHop*Mentions mentions are read); facts about those
//               entities join too
//   recency     the union of candidates above, newest first
//   importance  the same union, most important first (facts: by confidence)
// Fusion: score = sum over signals of weight / (60 + rank) (reciprocal-rank fusion;
// weights and their defaults in RecallQuery). `why` lists every signal that ranked the memory.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/base/status.h"
#include "cairn/memory/internal/store_impl.h"
#include "cairn/memory/memory.h"
#include "cairn/vector/filter.h"
#include "cairn/vector/text_index.h"

namespace cairn::memory {

using internal::Conn;
using internal::Stmt;

namespace {

// Question words and fillers that every question has: they only add noise to BM25.
const std::set<std::string, std::less<>>& QueryStopwords() {
  static const auto* w = new std::set<std::string, std::less<>>{
      "what", "when", "where", "who", "whom", "which", "why", "how", "did", "does", "do", "is", "are", "was",
      "were", "the", "a", "an", "of", "to", "in", "on", "at", "for", "and", "or", "has", "have", "had", "be",
      "been", "that", "this", "with", "about", "as", "by", "from", "it", "its", "i", "you", "he", "she", "they",
      "his", "her", "their", "my", "your", "me", "us", "we", "would", "could", "should", "can", "will", "there",
      "some", "any", "kind", "type", "likely"};
  return *w;
}

// The query's words without the common ones (the whole text when nothing is left).
std::string ContentWords(const std::string& text) {
  std::string kept;
  std::string word;
  auto flush = [&]() {
    if (word.empty()) return;
    std::string low = NormalizeName(word);
    if (!QueryStopwords().count(low)) {
      if (!kept.empty()) kept += ' ';
      kept += word;
    }
    word.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80) {
      word += c;
    } else {
      flush();
    }
  }
  flush();
  return kept.empty() ? text : kept;
}

// Graph: the newest mentions read per entity named in the query, and per neighbour 1 and 2
// hops away (busy entities are mentioned in a large share of a big store; the neighbours'
// newest mentions are what they add).
constexpr size_t kHop0Mentions = 1000, kHop1Mentions = 250, kHop2Mentions = 50;

std::string LowerAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Whether a (lower-case) speaker is `name`: the whole name or its first word.
bool SpeakerIs(const std::string& speaker, const std::string& name) {
  if (speaker.empty()) return false;
  if (speaker == name) return true;
  const size_t sp = speaker.find(' ');
  return sp != std::string::npos && speaker.compare(0, sp, name) == 0;
}

// Calls f with each word of `text` (letters, digits, UTF-8 bytes), lower-cased.
template <typename F>
void ForEachWord(const std::string& text, F f) {
  std::string word;
  for (size_t i = 0; i <= text.size(); ++i) {
    const unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : ' ';
    if (std::isalnum(c) || c >= 0x80) {
      word += static_cast<char>(std::tolower(c));
    } else if (!word.empty()) {
      f(std::move(word));
      word.clear();
    }
  }
}

struct TextRow {
  double score;  // -bm25(), larger is better
  uint64_t id;
  std::string speaker;  // lower case
};

bool ByScore(const TextRow& a, const TextRow& b) { return a.score > b.score; }

// Bounds a match expression for a big store (Impl::BoundedMatch): the words kept, and
// whether only the newest matches are to be taken.
using BoundFn =
    std::function<absl::StatusOr<std::string>(const std::string& match, int64_t postings, bool* newest_only)>;

// BM25 over episodes_fts for the words of `text` (OR-ed), best first, at most `limit`
// that pass the query's namespaces, time and archive filters. FTS5 ranks its matches by
// itself; each is then checked against the filters until `limit` pass, so a large store
// looks up a few episode rows rather than joining every match before sorting.
// With `content_only` only the episode's own text is searched (weights 1, 0, 0).
absl::StatusOr<std::vector<TextRow>> SearchText(Conn& db, const BoundFn& bound, const std::string& text,
                                                const RecallQuery& q, int64_t as_of,
                                                const std::set<std::string>& allowed, size_t limit,
                                                int64_t postings, bool content_only = false) {
  std::vector<TextRow> rows;
  std::string match = vector::TextIndex::MatchExpression(text);
  if (match.empty()) return rows;
  bool newest_only = false;
  CAIRN_ASSIGN_OR_RETURN(match, bound(match, postings, &newest_only));
  if (match.empty()) return rows;
  if (content_only) match = "{content} : (" + match + ")";
  // The score is computed once per match, as a named column the sort reuses (ORDER BY a
  // bm25() expression would run the ranking function a second time for every match), and
  // the speaker is read only for the rows kept: every match is ranked, few are used. The
  // ranking is bm25() with its word counts bounded by the postings budget (cairn_bm25,
  // internal/bm25.h): exact within it, and in the newest-first mode the one word kept, in
  // more episodes than the budget, is not counted through all of them.
  CAIRN_ASSIGN_OR_RETURN(
      Stmt s, db.Prepare(std::string("SELECT rowid, -cairn_bm25(episodes_fts, ?4, 1.0, ?2, ?3) AS score FROM"
                                     " episodes_fts"
                                     " WHERE episodes_fts MATCH ?1 ORDER BY ") +
                         (newest_only ? "rowid DESC" : "score DESC")));
  CAIRN_ASSIGN_OR_RETURN(Stmt e, db.Prepare("SELECT ns, time_ms <= ?2 AND (?3 OR archived = 0) FROM episodes"
                                            " WHERE id = ?1"));
  CAIRN_ASSIGN_OR_RETURN(Stmt sp, db.Prepare("SELECT speaker FROM episodes_fts WHERE rowid = ?"));
  s.BindAll(match, content_only ? 0.0 : q.context_weight, content_only ? 0.0 : q.date_weight, postings + 1);
  while (rows.size() < limit) {
    CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    // A row that matched only in columns weighted 0 scores 0: it did not match.
    const double score = s.Real(1);
    if (score <= 0) continue;
    const uint64_t id = static_cast<uint64_t>(s.Int(0));
    e.BindAll(id, as_of, q.include_archived);
    CAIRN_ASSIGN_OR_RETURN(bool found, e.Step());
    const bool keep = found && e.Int(1) != 0 && allowed.count(e.Text(0)) > 0;
    CAIRN_RETURN_IF_ERROR(e.Reset());
    if (!keep) continue;
    sp.Bind(1, id);
    CAIRN_ASSIGN_OR_RETURN(bool has_speaker, sp.Step());
    rows.push_back({score, id, has_speaker ? LowerAscii(sp.Text(0)) : std::string()});
    CAIRN_RETURN_IF_ERROR(sp.Reset());
  }
  if (newest_only) std::stable_sort(rows.begin(), rows.end(), ByScore);
  return rows;
}

// Words too common to help as expansion terms (beyond the question words above).
const std::set<std::string, std::less<>>& FeedbackStopwords() {
  static const auto* w = new std::set<std::string, std::less<>>{
      "all", "also", "am", "and", "because", "been", "being", "both", "but", "can", "did", "doing", "don", "each",
      "even", "ever", "few", "for", "from", "get", "got", "going", "gonna", "here", "into", "just", "know", "let",
      "like", "lot", "more", "most", "much", "not", "now", "one", "only", "other", "our", "out", "over", "own",
      "really", "same", "since", "some", "something", "still", "such", "sure", "than", "thanks", "that", "the",
      "them", "then", "these", "thing", "things", "those", "through", "too", "very", "way", "well", "what", "yeah",
      "yes", "you", "your", "yours", "wow", "great", "awesome", "cool", "glad", "hey", "totally", "definitely",
      "love", "amazing", "good", "feel", "think", "time", "make", "made", "ours", "him",
      "she", "hers", "herself", "himself", "myself", "yourself", "who", "whom", "its", "were", "was", "has"};
  return *w;
}

// RM3-style expansion: the words that recur in the best `feedback_docs` rows (each row's
// distinct words weighted by its score relative to the first), minus the query's own and
// common words; the `feedback_terms` heaviest, space-separated.
absl::StatusOr<std::string> FeedbackTerms(Conn& db, const std::string& content, const std::vector<TextRow>& rows,
                                          const RecallQuery& q) {
  std::set<std::string> query_words;
  ForEachWord(content, [&](std::string w) { query_words.insert(std::move(w)); });
  std::set<std::string> speakers;
  for (const TextRow& r : rows) speakers.insert(r.speaker);
  std::map<std::string, double> weight;
  const double top = rows[0].score > 0 ? rows[0].score : 1;
  for (size_t i = 0; i < rows.size() && i < q.feedback_docs; ++i) {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT content FROM episodes WHERE id = ?"));
    s.Bind(1, rows[i].id);
    CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) continue;
    std::set<std::string> seen;
    ForEachWord(s.Text(0), [&](std::string w) {
      if (w.size() <= 2 || query_words.count(w) || QueryStopwords().count(w) || FeedbackStopwords().count(w)) return;
      // Names of speakers are in nearly every episode of a chat ("Ann: ...").
      for (const std::string& sp : speakers)
        if (SpeakerIs(sp, w)) return;
      seen.insert(std::move(w));
    });
    for (const std::string& w : seen) weight[w] += rows[i].score / top;
  }
  std::vector<std::pair<double, std::string>> ranked;
  for (auto& [w, v] : weight) ranked.emplace_back(-v, w);
  std::sort(ranked.begin(), ranked.end());
  std::string out;
  for (size_t i = 0; i < ranked.size() && i < q.feedback_terms; ++i) {
    if (!out.empty()) out += ' ';
    out += ranked[i].second;
  }
  return out;
}

// Credit from the episodes that follow (RecallQuery::next_weights): each of `matches`
// (episodes whose own text matched) adds next_weights[i] times its score to the i-th episode
// before it in its namespace within `window_ms` (those its BM25 context field holds), when
// that one passes the query's namespaces, time and archive filters. An episode not in `rows`
// yet joins it.
absl::Status CreditPredecessors(Conn& db, const std::vector<TextRow>& matches, int64_t window_ms,
                                const RecallQuery& q, int64_t as_of, const std::set<std::string>& allowed,
                                std::vector<TextRow>& rows) {
  CAIRN_ASSIGN_OR_RETURN(
      Stmt p, db.Prepare("SELECT p.id, p.ns, f.speaker, p.time_ms <= ?3 AND (?4 OR p.archived = 0) FROM episodes e"
                         " JOIN episodes p ON p.id IN (SELECT id FROM episodes WHERE ns = e.ns AND time_ms <="
                         " e.time_ms AND time_ms >= e.time_ms - ?2 AND (time_ms < e.time_ms OR id < e.id) AND kind ="
                         " 'episode' ORDER BY time_ms DESC, id DESC LIMIT ?5) JOIN episodes_fts f ON f.rowid = p.id"
                         " WHERE e.id = ?1 AND e.kind = 'episode' ORDER BY p.time_ms DESC, p.id DESC"));
  std::unordered_map<uint64_t, size_t> at;
  for (size_t i = 0; i < rows.size(); ++i) at.emplace(rows[i].id, i);
  for (const TextRow& m : matches) {
    p.BindAll(m.id, window_ms, as_of, q.include_archived, static_cast<int64_t>(q.next_weights.size()));
    for (size_t i = 0; i < q.next_weights.size(); ++i) {
      CAIRN_ASSIGN_OR_RETURN(bool row, p.Step());
      if (!row) break;
      const double add = q.next_weights[i] * m.score;
      if (p.Int(3) == 0 || allowed.count(p.Text(1)) == 0 || add <= 0) continue;
      const uint64_t prev = static_cast<uint64_t>(p.Int(0));
      if (auto it = at.find(prev); it != at.end()) {
        rows[it->second].score += add;
      } else {
        at.emplace(prev, rows.size());
        rows.push_back({add, prev, LowerAscii(p.Text(2))});
      }
    }
    CAIRN_RETURN_IF_ERROR(p.Reset());
  }
  std::stable_sort(rows.begin(), rows.end(), ByScore);
  return absl::OkStatus();
}

// The first word of the query that names one of the speakers of `rows` ("" when none does).
std::string NamedSpeaker(const std::string& query, const std::vector<TextRow>& rows) {
  std::set<std::string> speakers;
  for (const TextRow& r : rows) speakers.insert(r.speaker);
  std::string named;
  ForEachWord(query, [&](std::string w) {
    if (!named.empty()) return;
    for (const std::string& sp : speakers)
      if (SpeakerIs(sp, w)) {
        named = std::move(w);
        return;
      }
  });
  return named;
}

struct Candidate {
  std::map<std::string, size_t> ranks;  // signal -> 1-based rank
  std::set<std::string> entities;       // graph: the query entities it mentions
  int64_t time_ms = 0;
  double importance = 0;
};

}  // namespace

absl::StatusOr<std::vector<Recalled>> MemoryStore::Recall(const RecallQuery& q) const {
  if (q.k == 0 || q.k > 1000) return absl::InvalidArgumentError(fmt::format("recall: k must be 1..1000, got {}", q.k));
  if (q.namespaces.empty()) return absl::InvalidArgumentError("recall: at least one namespace is required");
  if (q.text.empty()) return absl::InvalidArgumentError("recall: the query text is empty");
  if (q.next_weights.size() > 8) return absl::InvalidArgumentError("recall: at most 8 next_weights");
  std::vector<double> text_weights = {q.context_weight, q.date_weight, q.feedback_weight};
  text_weights.insert(text_weights.end(), q.next_weights.begin(), q.next_weights.end());
  for (double w : text_weights)
    if (!(w >= 0 && w <= 1e6))
      return absl::InvalidArgumentError(fmt::format("recall: text weights must be in [0, 1e6], got {}", w));
  if (!(q.speaker_boost > 0 && q.speaker_boost <= 1e6))
    return absl::InvalidArgumentError(
        fmt::format("recall: speaker_boost must be in (0, 1e6], got {}", q.speaker_boost));
  if (q.feedback_docs > 1000 || q.feedback_terms > 100)
    return absl::InvalidArgumentError("recall: at most 1000 feedback docs and 100 feedback terms");
  // Every acknowledged write is searchable: its vectors may still be queued.
  if (absl::Status s = impl_->DrainVectors(); !s.ok() && q.vector_weight > 0) return s;
  std::lock_guard<std::mutex> l(impl_->read_mu);
  Impl& im = *impl_;
  Conn& db = *im.rdb;
  // One read transaction: every statement below sees the same snapshot (a memory checked
  // as a candidate is still there when it is loaded), and the WAL read lock is taken once
  // rather than per statement.
  CAIRN_RETURN_IF_ERROR(db.Exec("BEGIN"));
  struct EndRead {
    Conn& db;
    ~EndRead() { (void)db.Exec("COMMIT"); }
  } end_read{db};
  for (const std::string& ns : q.namespaces) CAIRN_RETURN_IF_ERROR(im.CheckAccess(db, q.agent, ns, false));
  const size_t n = q.candidates ? q.candidates : std::max<size_t>(50, 4 * q.k);
  const int64_t as_of = q.as_of_ms.value_or(std::numeric_limits<int64_t>::max());
  const std::string ns_json = nlohmann::json(q.namespaces).dump();
  const std::set<std::string> allowed(q.namespaces.begin(), q.namespaces.end());

  std::map<uint64_t, Candidate> cands;  // point id (facts with kFactBit)
  std::vector<std::pair<std::string, double>> signals;
  auto add_list = [&](const std::string& name, const std::vector<uint64_t>& ids) {
    for (size_t i = 0; i < ids.size(); ++i) cands[ids[i]].ranks.emplace(name, i + 1);
  };

  // Vector.
  if (q.vector_weight > 0) {
    absl::StatusOr<std::vector<float>> v = im.embedder->Embed(ContentWords(q.text));
    if (v.ok()) {
      // Only the conditions that can reject a point go into the filter: binding one costs
      // time in proportion to the points it matches (the collection counts them to plan the
      // search), so a store with one namespace, searched for now, searches unfiltered.
      // Candidates are checked against SQLite below in any case.
      nlohmann::json conds = nlohmann::json::array();
      bool other_ns = false;
      {
        CAIRN_ASSIGN_OR_RETURN(Stmt o, db.Prepare("SELECT 1 FROM namespaces WHERE name NOT IN"
                                                  " (SELECT value FROM json_each(?1)) LIMIT 1"));
        o.Bind(1, ns_json);
        CAIRN_ASSIGN_OR_RETURN(other_ns, o.Step());
      }
      if (other_ns) conds.push_back({{"field", "ns"}, {"in", q.namespaces}});
      if (q.as_of_ms) conds.push_back({{"field", "t"}, {"lte", as_of}});
      if (!q.facts) conds.push_back({{"field", "fact"}, {"ne", 1}});
      if (!q.episodes) conds.push_back({{"field", "fact"}, {"eq", 1}});
      vector::SearchRequest req;
      req.vector = std::move(*v);
      req.k = n;
      req.ef = std::max<size_t>(n, 64);
      if (!conds.empty()) {
        CAIRN_ASSIGN_OR_RETURN(vector::Predicate pred, vector::ParseFilter(nlohmann::json{{"and", conds}}));
        req.filter = std::move(pred);
      }
      CAIRN_ASSIGN_OR_RETURN(std::vector<vector::SearchHit> hits, im.vectors->Search(req));
      std::vector<uint64_t> ids;
      for (const auto& h : hits) ids.push_back(h.id);
      add_list("vector", ids);
      signals.emplace_back("vector", q.vector_weight);
    }
  }

  // BM25 over episodes: the episode's words, at context_weight those of the episodes
  // before it, at date_weight its day; then the speaker boost, over a deeper list than is
  // kept; then one round of pseudo-relevance feedback.
  if (q.bm25_weight > 0 && q.episodes) {
    const std::string content = ContentWords(q.text);
    const BoundFn bound = [&](const std::string& m, int64_t postings, bool* newest_only) {
      return im.BoundedMatch(db, m, postings, newest_only);
    };
    const size_t depth = q.speaker_boost != 1 || q.feedback_terms > 0 ? 4 * n : n;
    CAIRN_ASSIGN_OR_RETURN(std::vector<TextRow> rows, SearchText(db, bound, content, q, as_of, allowed, depth, Impl::kBm25Postings));
    std::string named;
    if (q.speaker_boost != 1 && !rows.empty()) {
      named = NamedSpeaker(q.text, rows);
      if (!named.empty()) {
        for (TextRow& r : rows)
          if (SpeakerIs(r.speaker, named)) r.score *= q.speaker_boost;
        std::stable_sort(rows.begin(), rows.end(), ByScore);
      }
    }
    if (!q.next_weights.empty() && !rows.empty()) {
      // The n best matches of the episodes' own text credit the episodes before them.
      CAIRN_ASSIGN_OR_RETURN(std::vector<TextRow> own,
                             SearchText(db, bound, content, q, as_of, allowed, n, Impl::kBm25SecondaryPostings,
                                        /*content_only=*/true));
      CAIRN_RETURN_IF_ERROR(CreditPredecessors(db, own, std::max<int64_t>(0, im.options.context_window_ms), q, as_of,
                                               allowed, rows));
    }
    if (q.feedback_terms > 0 && q.feedback_weight > 0 && !rows.empty()) {
      CAIRN_ASSIGN_OR_RETURN(std::string expansion, FeedbackTerms(db, content, rows, q));
      if (!expansion.empty()) {
        CAIRN_ASSIGN_OR_RETURN(std::vector<TextRow> more, SearchText(db, bound, expansion, q, as_of, allowed, depth,
                                                                          Impl::kBm25SecondaryPostings));
        std::unordered_map<uint64_t, size_t> at;
        for (size_t i = 0; i < rows.size(); ++i) at.emplace(rows[i].id, i);
        for (TextRow& r : more) {
          auto it = at.find(r.id);
          if (it != at.end()) {
            rows[it->second].score += q.feedback_weight * r.score;
          } else {
            r.score *= q.feedback_weight;
            rows.push_back(std::move(r));
          }
        }
        std::stable_sort(rows.begin(), rows.end(), ByScore);
      }
    }
    if (!rows.empty()) {
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < rows.size() && i < n; ++i) ids.push_back(rows[i].id);
      add_list("bm25", ids);
      signals.emplace_back("bm25", q.bm25_weight);
    }
  }

  // Graph.
  if (q.graph_weight > 0) {
    std::map<uint64_t, std::pair<double, std::string>> ents;  // entity -> (weight, name)
    auto lookup = [&](const std::string& lower) -> absl::StatusOr<std::vector<uint64_t>> {
      CAIRN_ASSIGN_OR_RETURN(Stmt a, db.Prepare("SELECT entity FROM aliases WHERE alias = ?1 AND ns IN"
                                                " (SELECT value FROM json_each(?2))"));
      a.BindAll(lower, ns_json);
      std::vector<uint64_t> out;
      while (true) {
        CAIRN_ASSIGN_OR_RETURN(bool row, a.Step());
        if (!row) break;
        out.push_back(static_cast<uint64_t>(a.Int(0)));
      }
      return out;
    };
    ExtractContext ctx;
    ctx.is_known_alias = [&](const std::string& lower) {
      absl::StatusOr<std::vector<uint64_t>> ids = lookup(lower);
      return ids.ok() && !ids->empty();
    };
    CAIRN_ASSIGN_OR_RETURN(Extraction ex, im.extractor->Extract(q.text, ctx));
    for (const ExtractedEntity& e : ex.entities) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, lookup(NormalizeName(e.name)));
      for (uint64_t id : ids) ents.emplace(id, std::make_pair(1.0, e.name));
    }
    // Neighbours, 1 and 2 hops, strongest relations first.
    std::vector<uint64_t> frontier;
    for (const auto& [id, w] : ents) frontier.push_back(id);
    for (int hop = 1; hop <= 2 && !frontier.empty(); ++hop) {
      std::vector<uint64_t> next;
      const double w = std::pow(0.5, hop);
      for (uint64_t src : frontier) {
        // The strongest relations of src, either side (relation_graph.h has the order).
        std::vector<std::pair<uint64_t, double>> strongest;
        {
          std::shared_lock<std::shared_mutex> g(im.graph_mu);
          strongest = im.graph.Strongest(src, hop == 1 ? 8 : 4);
        }
        for (const auto& neighbour : strongest) {
          const uint64_t dst = neighbour.first;
          if (ents.count(dst)) continue;
          ents.emplace(dst, std::make_pair(w, std::string()));
          next.push_back(dst);
        }
      }
      frontier = std::move(next);
    }
    if (!ents.empty()) {
      double total = 1;
      {
        // max(id) is the count without a scan (close enough for an idf; ids are never reused).
        CAIRN_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT max(id) FROM episodes"));
        CAIRN_ASSIGN_OR_RETURN(bool row, c.Step());
        if (row) total = std::max<double>(1, static_cast<double>(c.Int(0)));
      }
      // Per memory: its score and which query entities it mentions, as bits of `named`
      // (the names are looked up for the n kept only; thousands of mentions are read).
      struct Hit {
        double score = 0;
        uint64_t names = 0;
      };
      std::vector<std::string> named;
      std::unordered_map<uint64_t, std::set<std::string>> more_names;  // past 64 distinct names
      std::unordered_map<uint64_t, Hit> score;
      score.reserve(4096);
      std::vector<uint64_t> mentioned;
      for (const auto& entry : ents) {
        // Not a structured binding: the lambda below captures it (clang 14 cannot capture one).
        const uint64_t eid = entry.first;
        const auto& wn = entry.second;
        double mentions = 1;
        {
          CAIRN_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT mentions FROM entities WHERE id = ?"));
          c.Bind(1, eid);
          CAIRN_ASSIGN_OR_RETURN(bool row, c.Step());
          if (row) mentions = std::max<double>(1, static_cast<double>(c.Int(0)));
        }
        const double idf = std::log(1 + total / mentions);
        size_t name_index = 0;
        if (!wn.second.empty()) {
          name_index = static_cast<size_t>(std::find(named.begin(), named.end(), wn.second) - named.begin());
          if (name_index == named.size()) named.push_back(wn.second);
        }
        auto credit = [&](uint64_t id) {
          Hit& h = score[id];
          h.score += wn.first * idf;
          if (wn.second.empty()) return;
          if (name_index < 64) {
            h.names |= uint64_t{1} << name_index;
          } else {
            more_names[id].insert(wn.second);
          }
        };
        if (q.episodes) {
          // From memory (mention_index.h); an episode committed after this read began is
          // dropped with the candidates the snapshot does not hold, below.
          mentioned.clear();
          {
            std::shared_lock<std::shared_mutex> g(im.graph_mu);
            im.mention_index.Newest(eid, wn.first >= 1 ? kHop0Mentions : wn.first >= 0.5 ? kHop1Mentions : kHop2Mentions,
                                    &mentioned);
          }
          for (uint64_t id : mentioned) credit(id);
        }
        if (q.facts && wn.first >= 0.5) {
          // The 50 oldest facts about the entity, each side read in id order from its index
          // (facts_subject_valid, facts_object_valid: current facts first, by id) rather than
          // a scan of the table.
          static constexpr char kFactsAsOf[] =
              "SELECT id FROM (SELECT id FROM facts WHERE subject = ?1 AND valid_from <= ?2 AND (valid_to IS NULL"
              " OR valid_to > ?2) ORDER BY id LIMIT 50) UNION SELECT id FROM (SELECT id FROM facts WHERE"
              " object_entity = ?1 AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2) ORDER BY id LIMIT 50)"
              " ORDER BY id LIMIT 50";
          static constexpr char kFactsNow[] =
              "SELECT id FROM (SELECT id FROM facts WHERE subject = ?1 AND valid_to IS NULL AND ?2 = ?2 ORDER BY id"
              " LIMIT 50) UNION SELECT id FROM (SELECT id FROM facts WHERE object_entity = ?1 AND valid_to IS NULL"
              " ORDER BY id LIMIT 50) ORDER BY id LIMIT 50";
          CAIRN_ASSIGN_OR_RETURN(Stmt f, db.Prepare(q.as_of_ms ? kFactsAsOf : kFactsNow));
          f.BindAll(eid, as_of);
          while (true) {
            CAIRN_ASSIGN_OR_RETURN(bool row, f.Step());
            if (!row) break;
            credit(static_cast<uint64_t>(f.Int(0)) | kFactBit);
          }
        }
      }
      std::vector<std::pair<double, uint64_t>> ranked;
      ranked.reserve(score.size());
      for (const auto& [id, h] : score) ranked.emplace_back(-h.score, id);
      // (score, id) is a total order: the first n after a partial sort are those of a full one.
      const size_t top = std::min(ranked.size(), n);
      std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top), ranked.end());
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < ranked.size() && ids.size() < n; ++i) ids.push_back(ranked[i].second);
      add_list("graph", ids);
      for (uint64_t id : ids) {
        std::set<std::string> names;
        const uint64_t bits = score[id].names;
        for (size_t b = 0; b < 64 && b < named.size(); ++b)
          if (bits >> b & 1) names.insert(named[b]);
        if (auto it = more_names.find(id); it != more_names.end()) names.merge(it->second);
        if (!names.empty()) cands[id].entities = std::move(names);
      }
      signals.emplace_back("graph", q.graph_weight);
    }
  }

  // Check every candidate; drop what the query may not see (namespace, time, archive,
  // stale vectors of forgotten memories). Only what fusion needs (time, importance) is read
  // here; the k memories returned are loaded in full below (a fact confirmed thousands of
  // times has thousands of provenance rows, and most candidates are not returned).
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt es, db.Prepare("SELECT ns, time_ms, importance, archived FROM episodes WHERE id = ?"));
    CAIRN_ASSIGN_OR_RETURN(Stmt fs, db.Prepare("SELECT f.ns, f.valid_from, f.valid_to, f.confidence FROM facts f"
                                               " JOIN entities e ON e.id = f.subject WHERE f.id = ?"));
    for (auto it = cands.begin(); it != cands.end();) {
      const uint64_t pid = it->first;
      Candidate& c = it->second;
      bool keep = false;
      if (pid & kFactBit) {
        fs.Bind(1, pid & ~kFactBit);
        CAIRN_ASSIGN_OR_RETURN(bool row, fs.Step());
        if (row && q.facts && allowed.count(fs.Text(0))) {
          Fact f;
          f.valid_from_ms = fs.Int(1);
          if (!fs.IsNull(2)) f.valid_to_ms = fs.Int(2);
          keep = q.as_of_ms ? f.ValidAt(*q.as_of_ms) : f.Current();
          c.time_ms = f.valid_from_ms;
          c.importance = fs.Real(3);
        }
        CAIRN_RETURN_IF_ERROR(fs.Reset());
      } else {
        es.Bind(1, pid);
        CAIRN_ASSIGN_OR_RETURN(bool row, es.Step());
        if (row && q.episodes && allowed.count(es.Text(0)) && es.Int(1) <= as_of &&
            (q.include_archived || es.Int(3) == 0)) {
          keep = true;
          c.time_ms = es.Int(1);
          c.importance = es.Real(2);
        }
        CAIRN_RETURN_IF_ERROR(es.Reset());
      }
      it = keep ? std::next(it) : cands.erase(it);
    }
  }
  if (!cands.empty()) {
    std::vector<std::pair<int64_t, uint64_t>> by_time;
    std::vector<std::pair<double, uint64_t>> by_importance;
    for (const auto& [id, c] : cands) {
      by_time.emplace_back(-c.time_ms, id);
      by_importance.emplace_back(-c.importance, id);
    }
    std::sort(by_time.begin(), by_time.end());
    std::sort(by_importance.begin(), by_importance.end());
    if (q.recency_weight > 0) {
      std::vector<uint64_t> ids;
      for (const auto& [t, id] : by_time) ids.push_back(id);
      add_list("recency", ids);
      signals.emplace_back("recency", q.recency_weight);
    }
    if (q.importance_weight > 0) {
      std::vector<uint64_t> ids;
      for (const auto& [v, id] : by_importance) ids.push_back(id);
      add_list("importance", ids);
      signals.emplace_back("importance", q.importance_weight);
    }
  }

  std::vector<std::pair<double, uint64_t>> fused;
  for (const auto& [id, c] : cands) {
    double s = 0;
    for (const auto& [name, w] : signals)
      if (auto it = c.ranks.find(name); it != c.ranks.end()) s += w / (60.0 + static_cast<double>(it->second));
    fused.emplace_back(-s, id);
  }
  std::sort(fused.begin(), fused.end());
  std::vector<Recalled> out;
  for (size_t i = 0; i < fused.size() && out.size() < q.k; ++i) {
    const uint64_t id = fused[i].second;
    Recalled r;
    if (id & kFactBit) {
      CAIRN_ASSIGN_OR_RETURN(Fact f, im.LoadFact(db, id & ~kFactBit));
      r.kind = Recalled::Kind::kFact;
      r.id = f.id;
      r.ns = f.ns;
      std::string pred = f.predicate;
      std::replace(pred.begin(), pred.end(), '_', ' ');
      r.text = f.subject + " " + pred + " " + f.object;
      r.author = f.author;
      r.time_ms = f.valid_from_ms;
      r.provenance = f.episodes;
      r.fact = std::move(f);
    } else {
      CAIRN_ASSIGN_OR_RETURN(Episode e, im.LoadEpisode(db, id));
      r.kind = Recalled::Kind::kEpisode;
      r.id = e.id;
      r.ns = e.ns;
      r.text = std::move(e.content);
      r.author = std::move(e.author);
      r.time_ms = e.time_ms;
      r.source = std::move(e.source);
      r.provenance = std::move(e.summarizes);
    }
    r.score = -fused[i].first;
    const Candidate& c = cands.at(id);
    // Strongest evidence first: the content signals, then recency/importance.
    for (const char* name : {"vector", "bm25", "graph", "recency", "importance"}) {
      auto it = c.ranks.find(name);
      if (it == c.ranks.end() || (std::string_view(name) != "vector" && std::string_view(name) != "bm25" &&
                                  std::string_view(name) != "graph" && it->second > q.k))
        continue;
      r.why.push_back(fmt::format("{}#{}", name, it->second));
    }
    for (const std::string& e : c.entities) r.why.push_back("graph:" + e);
    out.push_back(std::move(r));
  }
  return out;
}

// BM25 scores every episode that holds a query word, so in a big store a query of common
// words costs time in proportion to the store. When the words' episode counts add up to more
// than kBm25Postings, the most common words are left out (they weigh least in BM25) until the
// rest fit; when even the rarest one is in more episodes than that, BM25 returns the newest
// episodes that hold it. A store smaller than kBm25Postings is always ranked exactly.
absl::StatusOr<std::string> MemoryStore::Impl::BoundedMatch(Conn& db, const std::string& match, int64_t postings,
                                                             bool* newest_only) {
  *newest_only = false;
  std::vector<std::string> terms;  // each '"word"'
  for (size_t i = 0; i < match.size();) {
    size_t j = match.find(" OR ", i);
    if (j == std::string::npos) j = match.size();
    terms.push_back(match.substr(i, j - i));
    i = j + 4;
  }
  int64_t episodes = 0;
  {
    CAIRN_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT max(id) FROM episodes"));
    CAIRN_ASSIGN_OR_RETURN(bool row, c.Step());
    if (row) episodes = c.Int(0);
  }
  if (episodes <= postings) return match;
  // Episode counts, counted up to postings + 1 (which tells "more than the budget") and
  // cached while the store grows by less than a tenth; a count cut off at a smaller budget
  // is counted again for a larger one.
  std::vector<std::pair<int64_t, size_t>> df;  // (episodes holding it, term index)
  int64_t total = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    std::string key = NormalizeName(terms[i]);
    auto it = term_counts.find(key);
    if (it == term_counts.end() || episodes > it->second.episodes + it->second.episodes / 10 ||
        (it->second.count >= it->second.cap && it->second.cap < postings + 1)) {
      CAIRN_ASSIGN_OR_RETURN(Stmt c, db.Prepare("SELECT count(*) FROM (SELECT rowid FROM episodes_fts WHERE"
                                                " episodes_fts MATCH ?1 LIMIT ?2)"));
      c.BindAll(terms[i], postings + 1);
      CAIRN_ASSIGN_OR_RETURN(bool row, c.Step());
      if (term_counts.size() > 100000) term_counts.clear();
      it = term_counts.insert_or_assign(key, TermCount{row ? c.Int(0) : 0, episodes, postings + 1}).first;
    }
    const int64_t count = std::min(it->second.count, postings + 1);
    df.emplace_back(count, i);
    total += count;
  }
  if (total <= postings) return match;
  std::sort(df.begin(), df.end());
  std::vector<bool> keep(terms.size(), false);
  int64_t sum = 0;
  for (const auto& [count, i] : df) {
    if (count == 0) continue;
    if (sum + count > postings && sum > 0) break;
    keep[i] = true;
    sum += count;
  }
  if (sum > postings) *newest_only = true;
  std::string out;
  for (size_t i = 0; i < terms.size(); ++i) {
    if (!keep[i]) continue;
    if (!out.empty()) out += " OR ";
    out += terms[i];
  }
  return out;
}

}  // namespace cairn::memory
