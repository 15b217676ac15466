#include "cairn/memory/locomo.h"

#include <algorithm>
#include <chrono>
#include <cctype>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/base/status.h"

namespace cairn::memory {
namespace {

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::vector<std::string> NormalizeDiaIds(std::string_view raw) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find_first_of(";,", i);
    if (j == std::string_view::npos) j = raw.size();
    std::string piece;
    for (char c : raw.substr(i, j - i))
      if (!std::isspace(static_cast<unsigned char>(c))) piece += c;
    i = j + 1;
    if (piece.empty() || (piece[0] != 'D' && piece[0] != 'd')) continue;
    // The digits of the first two numbers, whatever separates them ("D:11:26", "D11:26").
    std::vector<std::string> nums;
    std::string cur;
    for (size_t k = 1; k <= piece.size(); ++k) {
      if (k < piece.size() && std::isdigit(static_cast<unsigned char>(piece[k]))) {
        cur += piece[k];
      } else if (!cur.empty()) {
        nums.push_back(cur);
        cur.clear();
      }
      if (k < piece.size() && !std::isdigit(static_cast<unsigned char>(piece[k])) && piece[k] != ':') {
        nums.clear();  // letters in the middle: not an id
        break;
      }
    }
    if (nums.size() != 2 || nums[0].size() > 6 || nums[1].size() > 6) continue;
    std::string id = fmt::format("D{}:{}", std::stoul(nums[0]), std::stoul(nums[1]));
    if (seen.insert(id).second) out.push_back(id);
  }
  return out;
}

absl::StatusOr<int64_t> ParseLocomoDate(std::string_view text) {
  static const char* kMonths[] = {"january", "february", "march",     "april",   "may",      "june",
                                  "july",    "august",   "september", "october", "november", "december"};
  std::string s = Lower(text);
  int hour = 0, minute = 0;
  size_t on = s.find(" on ");
  std::string date = s;
  if (on != std::string::npos) {
    std::string t = s.substr(0, on);
    date = s.substr(on + 4);
    int h = 0, m = 0;
    char ampm[3] = {0, 0, 0};
    if (std::sscanf(t.c_str(), "%d:%d %2s", &h, &m, ampm) < 2 || h < 0 || h > 23 || m < 0 || m > 59)
      return absl::InvalidArgumentError(fmt::format("bad time in date '{}'", std::string(text)));
    if (std::string(ampm) == "pm" && h < 12) h += 12;
    if (std::string(ampm) == "am" && h == 12) h = 0;
    hour = h;
    minute = m;
  }
  std::vector<std::string> words;
  std::string w;
  for (char c : date + " ") {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      w += c;
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  int day = 0, month = 0, year = 0;
  for (const std::string& x : words) {
    if (std::all_of(x.begin(), x.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
        x.size() <= 4) {
      int v = std::stoi(x);
      (x.size() == 4 ? year : day) = v;
      continue;
    }
    for (int k = 0; k < 12; ++k)
      if (x == kMonths[k] || (x.size() >= 3 && std::string_view(kMonths[k]).substr(0, x.size()) == x)) month = k + 1;
  }
  if (day < 1 || day > 31 || month == 0 || year < 1900 || year > 2200)
    return absl::InvalidArgumentError(fmt::format("cannot read the date '{}'", std::string(text)));
  const int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return ((days * 24 + hour) * 60 + minute) * 60000;
}

absl::StatusOr<std::vector<LocomoSample>> ParseLocomo(std::string_view json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("LoCoMo file is not valid JSON");
  if (!doc.is_array()) return absl::InvalidArgumentError("LoCoMo file must hold a JSON array of samples");
  std::vector<LocomoSample> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& s = doc[i];
    const std::string where = fmt::format("sample {}", i);
    if (!s.is_object() || !s.contains("conversation") || !s["conversation"].is_object())
      return absl::InvalidArgumentError(where + ": needs a 'conversation' object");
    LocomoSample sample;
    sample.id = s.contains("sample_id") && s["sample_id"].is_string() ? s["sample_id"].get<std::string>()
                                                                      : std::to_string(i);
    const nlohmann::json& c = s["conversation"];
    for (auto it = c.begin(); it != c.end(); ++it) {
      const std::string& key = it.key();
      if (key.rfind("session_", 0) != 0 || !it->is_array()) continue;
      const std::string num = key.substr(8);
      if (num.empty() || !std::all_of(num.begin(), num.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }) ||
          num.size() > 4)
        continue;
      LocomoSession session;
      session.index = std::stoi(num);
      const std::string date_key = key + "_date_time";
      if (!c.contains(date_key) || !c[date_key].is_string())
        return absl::InvalidArgumentError(fmt::format("{}: {} has no {}", where, key, date_key));
      absl::StatusOr<int64_t> t = ParseLocomoDate(c[date_key].get<std::string>());
      if (!t.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}: {}", where, date_key, std::string(t.status().message())));
      session.time_ms = *t;
      for (const nlohmann::json& turn : *it) {
        if (!turn.is_object() || !turn.contains("text") || !turn["text"].is_string() || !turn.contains("dia_id") ||
            !turn["dia_id"].is_string())
          return absl::InvalidArgumentError(fmt::format("{}: {}: a turn needs 'text' and 'dia_id'", where, key));
        LocomoTurn tr;
        tr.text = turn["text"].get<std::string>();
        if (turn.contains("blip_caption") && turn["blip_caption"].is_string())
          tr.text += " [shares a photo: " + turn["blip_caption"].get<std::string>() + "]";
        tr.speaker = turn.contains("speaker") && turn["speaker"].is_string() ? turn["speaker"].get<std::string>() : "";
        std::vector<std::string> ids = NormalizeDiaIds(turn["dia_id"].get<std::string>());
        tr.dia_id = ids.empty() ? turn["dia_id"].get<std::string>() : ids[0];
        session.turns.push_back(std::move(tr));
      }
      sample.sessions.push_back(std::move(session));
    }
    std::sort(sample.sessions.begin(), sample.sessions.end(),
              [](const LocomoSession& a, const LocomoSession& b) { return a.index < b.index; });
    if (s.contains("qa") && s["qa"].is_array()) {
      for (const nlohmann::json& q : s["qa"]) {
        if (!q.is_object() || !q.contains("question") || !q["question"].is_string() || !q.contains("category") ||
            !q["category"].is_number_integer())
          return absl::InvalidArgumentError(where + ": a qa item needs 'question' and an integer 'category'");
        LocomoQuestion lq;
        lq.question = q["question"].get<std::string>();
        lq.category = q["category"].get<int>();
        if (q.contains("evidence") && q["evidence"].is_array()) {
          std::set<std::string> seen;
          for (const nlohmann::json& e : q["evidence"]) {
            if (!e.is_string()) continue;
            for (std::string& id : NormalizeDiaIds(e.get<std::string>()))
              if (seen.insert(id).second) lq.evidence.push_back(std::move(id));
          }
        }
        sample.qa.push_back(std::move(lq));
      }
    }
    out.push_back(std::move(sample));
  }
  return out;
}

absl::StatusOr<LocomoReport> RunLocomo(const std::vector<LocomoSample>& samples, const LocomoOptions& o) {
  if (o.work_dir.empty()) return absl::InvalidArgumentError("locomo: a work directory is required");
  if (o.ks.empty()) return absl::InvalidArgumentError("locomo: no k to score");
  const size_t kmax = *std::max_element(o.ks.begin(), o.ks.end());
  LocomoReport report;
  std::map<int, LocomoCategory> cats;
  for (int c = 1; c <= 5; ++c) cats[c].category = c;
  LocomoCategory& overall = report.overall;
  std::map<int, std::map<size_t, double>> sums;
  std::map<size_t, double> overall_sum;
  std::vector<double> latencies;
  using Clock = std::chrono::steady_clock;
  for (size_t si = 0; si < samples.size() && (o.max_samples == 0 || si < o.max_samples); ++si) {
    const LocomoSample& s = samples[si];
    const std::string dir = (std::filesystem::path(o.work_dir) / fmt::format("sample{}", si)).string();
    std::filesystem::remove_all(dir);
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<MemoryStore> store, MemoryStore::Open(dir, o.memory));
    const std::string ns = fmt::format("locomo{}", si);
    std::vector<Episode> eps;
    for (const LocomoSession& session : s.sessions) {
      for (size_t t = 0; t < session.turns.size(); ++t) {
        const LocomoTurn& turn = session.turns[t];
        if (turn.text.empty()) continue;
        Episode e;
        e.ns = ns;
        e.author = "eval";
        e.speaker = turn.speaker;
        e.time_ms = session.time_ms + static_cast<int64_t>(t) * 1000;
        e.content = o.speaker_prefix && !turn.speaker.empty() ? turn.speaker + ": " + turn.text : turn.text;
        e.source = turn.dia_id;
        eps.push_back(std::move(e));
      }
    }
    auto t0 = Clock::now();
    CAIRN_ASSIGN_OR_RETURN(std::vector<RememberResult> ignored, store->RememberBatch(eps));
    report.ingest_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    report.episodes += eps.size();
    ++report.samples;
    for (const LocomoQuestion& q : s.qa) {
      LocomoCategory& cat = cats[q.category];
      cat.category = q.category;
      if (q.evidence.empty()) {
        ++cat.skipped;
        continue;
      }
      RecallQuery rq = o.recall;
      rq.agent = "eval";
      rq.text = q.question;
      rq.k = kmax;
      rq.namespaces = {ns};
      rq.facts = false;
      rq.episodes = true;
      auto q0 = Clock::now();
      absl::StatusOr<std::vector<Recalled>> got = store->Recall(rq);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - q0).count();
      latencies.push_back(ms);
      report.query_seconds += ms / 1000;
      if (!got.ok()) {
        if (absl::IsInvalidArgument(got.status())) got = std::vector<Recalled>{};  // e.g. no words
        else return got.status();
      }
      if (o.on_answer) o.on_answer(q, *got);
      std::set<std::string> evidence(q.evidence.begin(), q.evidence.end());
      ++cat.questions;
      if (q.category >= 1 && q.category <= 4) ++overall.questions;
      for (size_t k : o.ks) {
        std::set<std::string> hit;
        for (size_t i = 0; i < got->size() && i < k; ++i)
          for (const std::string& id : NormalizeDiaIds((*got)[i].source))
            if (evidence.count(id)) hit.insert(id);
        const double r = static_cast<double>(hit.size()) / static_cast<double>(evidence.size());
        sums[q.category][k] += r;
        if (q.category >= 1 && q.category <= 4) overall_sum[k] += r;
      }
    }
  }
  for (auto& [c, cat] : cats) {
    for (size_t k : o.ks) cat.recall[k] = cat.questions ? sums[c][k] / static_cast<double>(cat.questions) : 0;
    report.categories.push_back(cat);
  }
  for (size_t k : o.ks)
    overall.recall[k] = overall.questions ? overall_sum[k] / static_cast<double>(overall.questions) : 0;
  for (const auto& [c, cat] : cats)
    if (c >= 1 && c <= 4) overall.skipped += cat.skipped;
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    report.query_p50_ms = latencies[latencies.size() / 2];
    report.query_p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  return report;
}

}  // namespace cairn::memory
