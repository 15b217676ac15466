// MemoryStore::Consolidate: summaries of old episodes, importance decay, archiving.
//
// Per namespace the agent may write:
//   1. Episodes older than older_than_ms that no summary covers yet (not pinned, not
//      archived) are grouped by UTC day; each day with two or more becomes one summary
//      episode (kind "summary", author the consolidating agent, importance the group's
//      highest) made of the group's most central sentences: sentences are scored by the
//      mean frequency, within the group, of their words (3+ letters), and the best
//      summary_sentences are kept in their original order, each prefixed by its author.
//   2. Every episode that is not pinned decays: importance = base importance *
//      0.5^(age_days / half_life_days), age from its time (a summary: from when it was
//      written) to `now`.
//   3. Episodes whose importance is now below archive_below are archived: kept (GetEpisode,
//      Recall with include_archived), but left out of recall by default. Nothing is deleted.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "cairn/base/status.h"
#include "cairn/memory/internal/store_impl.h"
#include "cairn/memory/memory.h"

namespace cairn::memory {

using internal::Conn;
using internal::InTransaction;
using internal::Stmt;

namespace {

struct Row {
  uint64_t id;
  int64_t time_ms;
  std::string author, content;
  double importance;
};

std::vector<std::string> Sentences(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    cur += text[i];
    const bool end = text[i] == '.' || text[i] == '!' || text[i] == '?' || text[i] == '\n';
    if (end && (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1])))) {
      std::string t = NormalizeName(cur).empty() ? "" : cur;
      size_t b = t.find_first_not_of(" \t\n");
      if (b != std::string::npos) out.push_back(t.substr(b));
      cur.clear();
    }
  }
  size_t b = cur.find_first_not_of(" \t\n");
  if (b != std::string::npos) out.push_back(cur.substr(b));
  return out;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  std::string w;
  for (char c : s + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      if (w.size() >= 3) out.push_back(w);
      w.clear();
    }
  }
  return out;
}

std::string Summarize(const std::vector<Row>& group, size_t max_sentences) {
  std::map<std::string, double> freq;
  struct S {
    size_t order;
    std::string author, text;
    double score;
  };
  std::vector<S> all;
  for (const Row& r : group)
    for (const std::string& s : Sentences(r.content)) {
      for (const std::string& w : Words(s)) freq[w] += 1;
      all.push_back({all.size(), r.author, s, 0});
    }
  for (S& s : all) {
    std::vector<std::string> ws = Words(s.text);
    double sum = 0;
    for (const std::string& w : ws) sum += freq[w];
    s.score = ws.empty() ? 0 : sum / static_cast<double>(ws.size());
  }
  std::vector<S> best = all;
  std::stable_sort(best.begin(), best.end(), [](const S& a, const S& b) { return a.score > b.score; });
  if (best.size() > max_sentences) best.resize(max_sentences);
  std::sort(best.begin(), best.end(), [](const S& a, const S& b) { return a.order < b.order; });
  std::string out;
  for (const S& s : best) {
    if (!out.empty()) out += ' ';
    out += s.author;
    out += ": ";
    out += s.text;
  }
  return out;
}

}  // namespace

absl::StatusOr<ConsolidateReport> MemoryStore::Consolidate(const ConsolidateOptions& o) {
  if (o.half_life_days <= 0) return absl::InvalidArgumentError("consolidate: half_life_days must be positive");
  if (o.summary_sentences == 0) return absl::InvalidArgumentError("consolidate: summary_sentences must be positive");
  std::vector<std::string> namespaces = o.namespaces;
  if (namespaces.empty()) namespaces = ListNamespaces();
  std::lock_guard<std::mutex> l(impl_->write_mu);
  Impl& im = *impl_;
  Conn& db = *im.wdb;
  const int64_t now = o.now_ms.value_or(im.NowMs());
  ConsolidateReport report;
  std::vector<vector::Point> points;
  absl::Status s = im.WriteTx([&]() -> absl::Status {
    for (const std::string& ns : namespaces) {
      absl::Status access = im.CheckAccess(db, o.agent, ns, true);
      if (!access.ok()) {
        if (!o.namespaces.empty()) return access;  // asked for by name: say why not
        continue;
      }
      // 1. Summaries.
      std::map<int64_t, std::vector<Row>> days;
      {
        CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT id, time_ms, author, content, importance FROM episodes"
                                                  " WHERE ns = ? AND kind = 'episode' AND summarized_into IS NULL AND"
                                                  " pinned = 0 AND archived = 0 AND time_ms < ? ORDER BY time_ms, id"));
        q.BindAll(ns, now - o.older_than_ms);
        while (true) {
          CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
          if (!row) break;
          Row r{static_cast<uint64_t>(q.Int(0)), q.Int(1), q.Text(2), q.Text(3), q.Real(4)};
          days[r.time_ms / 86400000].push_back(std::move(r));
        }
      }
      for (const auto& [day, group] : days) {
        if (group.size() < 2) continue;
        Episode e;
        e.ns = ns;
        e.author = o.agent;
        e.time_ms = group.back().time_ms;
        e.content = Summarize(group, o.summary_sentences);
        if (e.content.size() > (64u << 10)) e.content.resize(64u << 10);
        if (e.content.empty()) continue;
        e.source = "consolidation";
        e.kind = "summary";
        for (const Row& r : group) {
          e.importance = std::max(e.importance, r.importance);
          e.summarizes.push_back(r.id);
        }
        RememberResult rr;
        CAIRN_ASSIGN_OR_RETURN(uint64_t sid, im.RememberOne(e, rr, points));
        for (const Row& r : group) {
          CAIRN_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE episodes SET summarized_into = ? WHERE id = ?"));
          CAIRN_RETURN_IF_ERROR(u.BindAll(sid, r.id).Run());
        }
        ++report.summaries;
        report.summarized += group.size();
      }
      // 2. Decay.
      std::vector<std::pair<uint64_t, double>> updates;
      {
        // Summaries age from when they were written, not from the events they condense.
        CAIRN_ASSIGN_OR_RETURN(Stmt q, db.Prepare("SELECT id, base_importance, CASE kind WHEN 'summary' THEN"
                                                  " recorded_ms ELSE time_ms END, importance FROM episodes"
                                                  " WHERE ns = ? AND pinned = 0 AND archived = 0"));
        q.Bind(1, ns);
        while (true) {
          CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
          if (!row) break;
          const double age_days = std::max<double>(0, static_cast<double>(now - q.Int(2)) / 86400000.0);
          const double v = q.Real(1) * std::pow(0.5, age_days / o.half_life_days);
          if (std::abs(v - q.Real(3)) > 1e-12) updates.emplace_back(static_cast<uint64_t>(q.Int(0)), v);
        }
      }
      for (const auto& [id, v] : updates) {
        CAIRN_ASSIGN_OR_RETURN(Stmt u, db.Prepare("UPDATE episodes SET importance = ? WHERE id = ?"));
        CAIRN_RETURN_IF_ERROR(u.BindAll(v, id).Run());
      }
      report.decayed += updates.size();
      // 3. Archive.
      CAIRN_ASSIGN_OR_RETURN(Stmt a, db.Prepare("UPDATE episodes SET archived = 1 WHERE ns = ? AND pinned = 0 AND"
                                                " archived = 0 AND importance < ?"));
      CAIRN_RETURN_IF_ERROR(a.BindAll(ns, o.archive_below).Run());
      report.archived += static_cast<size_t>(db.Changes());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) {
    im.entity_cache.clear();
    return s;
  }
  CAIRN_RETURN_IF_ERROR(im.EnqueueVectors(std::move(points)));
  return report;
}

}  // namespace cairn::memory
