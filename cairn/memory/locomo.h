// The LoCoMo long-conversation memory benchmark: reading its JSON and scoring evidence
// recall of MemoryStore::Recall.
//
// File format: a JSON array of samples, each {"sample_id", "conversation": {"speaker_a",
// "speaker_b", "session_<n>_date_time": "1:56 pm on 8 May, 2023", "session_<n>": [{"speaker",
// "dia_id": "D1:3", "text", "blip_caption"?}, ...]}, "qa": [{"question", "answer"?,
// "evidence": ["D1:3", ...], "category": 1..5}]}. Other keys are ignored.
//
// Scoring (RunLocomo): every turn of a sample becomes an episode in the sample's own
// namespace, at its session's date (plus one second per turn, to keep their order), with
// the turn's speaker as the episode's speaker and the photo caption appended when there is
// one. Each question is answered by Recall (episodes only, k = the largest k); recall@k =
// |evidence ∩ dia_ids of the first k results| / |evidence|, averaged over the questions of
// a category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial, kept
// apart), and over all questions of categories 1-4 together. Evidence ids are normalized
// (NormalizeDiaIds); questions whose evidence is empty after that are skipped and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/memory/memory.h"

namespace cairn::memory {

struct LocomoTurn {
  std::string speaker, dia_id, text;
};
struct LocomoSession {
  int index = 0;
  int64_t time_ms = 0;
  std::vector<LocomoTurn> turns;
};
struct LocomoQuestion {
  std::string question;
  int category = 0;
  std::vector<std::string> evidence;  // normalized, distinct
};
struct LocomoSample {
  std::string id;
  std::vector<LocomoSession> sessions;  // by index
  std::vector<LocomoQuestion> qa;
};

// Parses the file's text; errors name the sample and field.
absl::StatusOr<std::vector<LocomoSample>> ParseLocomo(std::string_view json_text);

// Splits and repairs dialogue ids: "D8:6; D9:17" -> {"D8:6", "D9:17"}, "D:11:26" ->
// {"D11:26"}, "D30:05" -> {"D30:5"}, " d3:4 " -> {"D3:4"}; pieces that are not a
// session:turn pair ("D", "", "D5") are dropped. Distinct, in first-seen order.
std::vector<std::string> NormalizeDiaIds(std::string_view raw);

// "1:56 pm on 8 May, 2023" (also without the time, or with "12:00 am") -> UTC ms.
absl::StatusOr<int64_t> ParseLocomoDate(std::string_view text);

struct LocomoOptions {
  std::vector<size_t> ks = {5, 10, 20};
  std::string work_dir;      // where the stores are built (one per sample); required
  MemoryOptions memory;      // dim, extractor
  RecallQuery recall;        // weights; agent, text, namespaces, k are set per question
  bool speaker_prefix = true;   // prepend "Speaker: " to each turn's content (BM25 then matches
                                // questions that name who said it)
  size_t max_samples = 0;    // 0 = all
  // Called with each scored question and what Recall returned (for looking at failures).
  std::function<void(const LocomoQuestion&, const std::vector<Recalled>&)> on_answer;
};

struct LocomoCategory {
  int category = 0;
  size_t questions = 0;      // scored
  size_t skipped = 0;        // empty evidence
  std::map<size_t, double> recall;  // k -> mean recall@k
};

struct LocomoReport {
  std::vector<LocomoCategory> categories;  // 1..5
  LocomoCategory overall;                  // categories 1-4 together (category = 0)
  size_t samples = 0, episodes = 0;
  double ingest_seconds = 0, query_seconds = 0;
  double query_p50_ms = 0, query_p99_ms = 0;
};

absl::StatusOr<LocomoReport> RunLocomo(const std::vector<LocomoSample>& samples, const LocomoOptions& options);

}  // namespace cairn::memory
