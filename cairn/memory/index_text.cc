// What BM25 indexes for an episode (episodes_fts):
//   content  the episode's text
//   context  the text of the episodes just before it in its namespace (MemoryOptions::
//            context_episodes within context_window_ms): a reply such as "Yes, every
//            Sunday since May!" is found by the words of the question it answers
//   date     its UTC day as words ("8 May 2023"), so that "what did Ann say on 8 May"
//            finds that day's episodes
//   speaker  who speaks (Episode::speaker, else the author); not indexed, read by Recall
//            for the speaker boost
#include <algorithm>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "cairn/base/status.h"
#include "cairn/memory/internal/store_impl.h"
#include "cairn/memory/memory.h"

namespace cairn::memory {

using internal::Stmt;

std::string DateWords(int64_t ms) {
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  // Days to civil date (H. Hinnant's algorithm), floor division for times before 1970.
  int64_t days = ms / 86400000;
  if (ms % 86400000 < 0) --days;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2);
  return fmt::format("{} {} {}", d, kMonths[m - 1], y);
}

absl::Status MemoryStore::Impl::IndexText(const Episode& e, uint64_t id, int64_t t) {
  std::string context;
  if (options.context_episodes > 0 && e.kind == "episode") {
    CAIRN_ASSIGN_OR_RETURN(Stmt s, wdb->Prepare("SELECT content FROM episodes WHERE ns = ?1 AND time_ms <= ?2 AND"
                                                " time_ms >= ?3 AND id != ?4 AND kind = 'episode'"
                                                " ORDER BY time_ms DESC, id DESC LIMIT ?5"));
    const int64_t window = std::max<int64_t>(0, options.context_window_ms);
    const int64_t from = t < std::numeric_limits<int64_t>::min() + window ? std::numeric_limits<int64_t>::min()
                                                                         : t - window;
    s.BindAll(e.ns, t, from, id, static_cast<int64_t>(options.context_episodes));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (!context.empty()) context += '\n';
      context += s.Text(0);
    }
  }
  CAIRN_ASSIGN_OR_RETURN(Stmt fts, wdb->Prepare("INSERT INTO episodes_fts(rowid, content, context, date, speaker)"
                                                " VALUES (?, ?, ?, ?, ?)"));
  return fts.BindAll(id, e.content, context, DateWords(t), e.speaker.empty() ? e.author : e.speaker).Run();
}

}  // namespace cairn::memory
