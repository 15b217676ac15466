// `cairn memory add|recall|facts|consolidate` on a memory store directory
// (cairn/memory), and `cairn eval locomo --data FILE`: evidence recall@k of the
// built-in recall on the LoCoMo conversations.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/commands.h"
#include "cairn/memory/locomo.h"
#include "cairn/memory/memory.h"

namespace cairn::cli {
namespace {

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

struct StoreFlags {
  std::string dir;
  std::string agent = "cli";
  std::string ns;
};

void AddStoreFlags(CLI::App* c, StoreFlags& f, bool ns_required) {
  c->add_option("--dir", f.dir, "Memory store directory (created when missing)")->required();
  c->add_option("--agent", f.agent, "Who is asking or writing")->capture_default_str();
  auto* o = c->add_option("--ns", f.ns, "Namespace");
  if (ns_required) o->required();
}

absl::StatusOr<std::unique_ptr<memory::MemoryStore>> OpenStore(const StoreFlags& f) {
  return memory::MemoryStore::Open(f.dir);
}

// ISO date "2024-03-05" or "2024-03-05T10:20:00Z" (UTC), or integer ms since the epoch.
absl::StatusOr<int64_t> ParseTime(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::stoll(s);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int n = std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec);
  if (n < 3 || mo < 1 || mo > 12 || d < 1 || d > 31)
    return absl::InvalidArgumentError(fmt::format("cannot read the time '{}' (YYYY-MM-DD[THH:MM:SS] or ms)", s));
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

nlohmann::json FactJson(const memory::Fact& f) {
  nlohmann::json j = {{"id", f.id},           {"subject", f.subject},       {"predicate", f.predicate},
                      {"object", f.object},   {"valid_from", f.valid_from_ms}, {"recorded_at", f.recorded_at_ms},
                      {"confidence", f.confidence}, {"author", f.author},  {"episodes", f.episodes}};
  j["valid_to"] = f.valid_to_ms ? nlohmann::json(*f.valid_to_ms) : nlohmann::json(nullptr);
  j["superseded_at"] = f.superseded_at_ms ? nlohmann::json(*f.superseded_at_ms) : nlohmann::json(nullptr);
  return j;
}

struct AddFlags {
  StoreFlags s;
  std::string text, time, source, speaker;
  double importance = 0.5;
  bool pin = false;
};

int RunAdd(const AddFlags& f) {
  auto store = OpenStore(f.s);
  if (!store.ok()) return fmt::print(stderr, "cairn memory add: {}\n", Msg(store.status())), 1;
  memory::Episode e;
  e.ns = f.s.ns;
  e.author = f.s.agent;
  e.speaker = f.speaker;
  e.content = f.text;
  e.source = f.source;
  e.importance = f.importance;
  e.pinned = f.pin;
  if (!f.time.empty()) {
    auto t = ParseTime(f.time);
    if (!t.ok()) return fmt::print(stderr, "cairn memory add: --time: {}\n", Msg(t.status())), 2;
    e.time_ms = *t;
  }
  auto r = (*store)->Remember(e);
  if (!r.ok()) return fmt::print(stderr, "cairn memory add: {}\n", Msg(r.status())), 1;
  nlohmann::json j = {{"episode", r->episode_id}, {"entities", r->entity_ids}, {"facts", r->fact_ids},
                      {"closed_facts", r->closed_fact_ids}};
  fmt::print("{}\n", j.dump());
  return 0;
}

struct RecallFlags {
  StoreFlags s;
  std::vector<std::string> namespaces;
  std::string text, as_of;
  size_t k = 10;
  bool archived = false;
};

int RunRecall(const RecallFlags& f) {
  auto store = OpenStore(f.s);
  if (!store.ok()) return fmt::print(stderr, "cairn memory recall: {}\n", Msg(store.status())), 1;
  memory::RecallQuery q;
  q.agent = f.s.agent;
  q.text = f.text;
  q.k = f.k;
  q.namespaces = f.namespaces;
  if (!f.s.ns.empty()) q.namespaces.push_back(f.s.ns);
  q.include_archived = f.archived;
  if (!f.as_of.empty()) {
    auto t = ParseTime(f.as_of);
    if (!t.ok()) return fmt::print(stderr, "cairn memory recall: --as-of: {}\n", Msg(t.status())), 2;
    q.as_of_ms = *t;
  }
  auto r = (*store)->Recall(q);
  if (!r.ok()) return fmt::print(stderr, "cairn memory recall: {}\n", Msg(r.status())), 1;
  for (const memory::Recalled& m : *r) {
    nlohmann::json j = {{"kind", m.kind == memory::Recalled::Kind::kFact ? "fact" : "episode"},
                        {"id", m.id},
                        {"ns", m.ns},
                        {"score", m.score},
                        {"text", m.text},
                        {"author", m.author},
                        {"time", m.time_ms},
                        {"provenance", m.provenance},
                        {"why", m.why}};
    if (!m.source.empty()) j["source"] = m.source;
    fmt::print("{}\n", j.dump());
  }
  return 0;
}

struct FactsFlags {
  StoreFlags s;
  std::string subject, predicate, as_of;
  bool history = false;
};

int RunFacts(const FactsFlags& f) {
  auto store = OpenStore(f.s);
  if (!store.ok()) return fmt::print(stderr, "cairn memory facts: {}\n", Msg(store.status())), 1;
  memory::FactQuery q;
  q.agent = f.s.agent;
  q.ns = f.s.ns;
  q.subject = f.subject;
  q.predicate = f.predicate;
  q.history = f.history;
  if (!f.as_of.empty()) {
    auto t = ParseTime(f.as_of);
    if (!t.ok()) return fmt::print(stderr, "cairn memory facts: --as-of: {}\n", Msg(t.status())), 2;
    q.as_of_ms = *t;
  }
  auto r = (*store)->Facts(q);
  if (!r.ok()) return fmt::print(stderr, "cairn memory facts: {}\n", Msg(r.status())), 1;
  for (const memory::Fact& fact : *r) fmt::print("{}\n", FactJson(fact).dump());
  return 0;
}

struct ConsolidateFlags {
  StoreFlags s;
  double older_than_days = 7, half_life_days = 30, archive_below = 0.05;
};

int RunConsolidate(const ConsolidateFlags& f) {
  auto store = OpenStore(f.s);
  if (!store.ok()) return fmt::print(stderr, "cairn memory consolidate: {}\n", Msg(store.status())), 1;
  memory::ConsolidateOptions o;
  o.agent = f.s.agent;
  if (!f.s.ns.empty()) o.namespaces = {f.s.ns};
  o.older_than_ms = static_cast<int64_t>(f.older_than_days * 86400000.0);
  o.half_life_days = f.half_life_days;
  o.archive_below = f.archive_below;
  auto r = (*store)->Consolidate(o);
  if (!r.ok()) return fmt::print(stderr, "cairn memory consolidate: {}\n", Msg(r.status())), 1;
  fmt::print("{}\n", nlohmann::json({{"summaries", r->summaries},
                                     {"summarized", r->summarized},
                                     {"decayed", r->decayed},
                                     {"archived", r->archived}})
                         .dump());
  return 0;
}

struct LocomoFlags {
  std::string data, work_dir, json_out;
  size_t dim = 256, max_samples = 0;
  bool no_speaker_prefix = false, json = false;
  memory::RecallQuery recall;  // the fusion weights and text-side settings, library defaults
};

int RunLocomo(const LocomoFlags& f) {
  std::ifstream in(f.data, std::ios::binary);
  if (!in) return fmt::print(stderr, "cairn eval locomo: cannot read '{}'\n", f.data), 1;
  std::stringstream ss;
  ss << in.rdbuf();
  auto samples = memory::ParseLocomo(ss.str());
  if (!samples.ok()) return fmt::print(stderr, "cairn eval locomo: {}: {}\n", f.data, Msg(samples.status())), 1;
  memory::LocomoOptions o;
  const bool temp = f.work_dir.empty();
  o.work_dir = temp ? (std::filesystem::temp_directory_path() / fmt::format("cairn-locomo-{}", ::getpid())).string()
                    : f.work_dir;
  o.memory.dim = f.dim;
  o.memory.sync_full = false;
  o.speaker_prefix = !f.no_speaker_prefix;
  o.max_samples = f.max_samples;
  o.recall = f.recall;
  auto r = memory::RunLocomo(*samples, o);
  if (temp) std::filesystem::remove_all(o.work_dir);
  if (!r.ok()) return fmt::print(stderr, "cairn eval locomo: {}\n", Msg(r.status())), 1;
  static const char* kNames[] = {"all 1-4", "multi-hop", "temporal", "open-domain", "single-hop", "adversarial"};
  nlohmann::json j = {{"samples", r->samples},
                      {"episodes", r->episodes},
                      {"ingest_seconds", r->ingest_seconds},
                      {"episodes_per_second", r->ingest_seconds > 0 ? r->episodes / r->ingest_seconds : 0},
                      {"query_p50_ms", r->query_p50_ms},
                      {"query_p99_ms", r->query_p99_ms}};
  std::string table = fmt::format("{:<22} {:>9} {:>7} {:>9} {:>9} {:>9}\n", "category", "questions", "skipped",
                                  "recall@5", "recall@10", "recall@20");
  auto row = [&](const memory::LocomoCategory& c) {
    nlohmann::json cj = {{"category", c.category}, {"name", kNames[c.category]}, {"questions", c.questions},
                         {"skipped", c.skipped}};
    for (const auto& [k, v] : c.recall) cj[fmt::format("recall@{}", k)] = v;
    j["categories"].push_back(cj);
    table += fmt::format("{:<22} {:>9} {:>7} {:>9.3f} {:>9.3f} {:>9.3f}\n",
                         c.category == 0 ? std::string(kNames[0]) : fmt::format("{} {}", c.category, kNames[c.category]),
                         c.questions, c.skipped,
                         c.recall.count(5) ? c.recall.at(5) : 0, c.recall.count(10) ? c.recall.at(10) : 0,
                         c.recall.count(20) ? c.recall.at(20) : 0);
  };
  for (const auto& c : r->categories)
    if (c.category <= 4) row(c);
  row(r->overall);
  for (const auto& c : r->categories)
    if (c.category == 5) row(c);
  table += fmt::format("{} samples, {} episodes ingested in {:.2f} s ({:.0f}/s); recall p50 {:.2f} ms, p99 {:.2f} ms\n",
                       r->samples, r->episodes, r->ingest_seconds,
                       r->ingest_seconds > 0 ? r->episodes / r->ingest_seconds : 0, r->query_p50_ms, r->query_p99_ms);
  return EmitBenchResults(f.json, f.json_out, j, table);
}

}  // namespace

void RegisterMemory(CLI::App& app, Runner* run) {
  CLI::App* m = app.add_subcommand("memory", "Agent memory: remember episodes, recall, facts, consolidate");
  m->require_subcommand(1);

  auto af = std::make_shared<AddFlags>();
  CLI::App* a = m->add_subcommand("add", "Remember one episode (entities and facts are extracted)");
  AddStoreFlags(a, af->s, true);
  a->add_option("text", af->text, "What happened")->required();
  a->add_option("--time", af->time, "When it happened (YYYY-MM-DD[THH:MM:SS] UTC or ms; default now)");
  a->add_option("--source", af->source, "Where it came from");
  a->add_option("--speaker", af->speaker, "Who \"I\" is in the text (default: the agent)");
  a->add_option("--importance", af->importance, "0..1")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  a->add_flag("--pin", af->pin, "Never decay or archive it");
  a->callback([=] { *run = [=] { return RunAdd(*af); }; });

  auto rf = std::make_shared<RecallFlags>();
  CLI::App* r = m->add_subcommand("recall", "Hybrid recall: one JSON line per memory, best first");
  AddStoreFlags(r, rf->s, false);
  r->add_option("--also", rf->namespaces, "More namespaces to search");
  r->add_option("query", rf->text, "What to recall")->required();
  r->add_option("--k", rf->k, "Memories to return")->capture_default_str()->check(CLI::Range(size_t{1}, size_t{1000}));
  r->add_option("--as-of", rf->as_of, "Recall as of this time (YYYY-MM-DD[THH:MM:SS] UTC or ms)");
  r->add_flag("--archived", rf->archived, "Include archived episodes");
  r->callback([=] { *run = [=] { return RunRecall(*rf); }; });

  auto ff = std::make_shared<FactsFlags>();
  CLI::App* f = m->add_subcommand("facts", "Facts of a namespace: current, as of a time, or the full history");
  AddStoreFlags(f, ff->s, true);
  f->add_option("--subject", ff->subject, "Only this entity (a name or alias)");
  f->add_option("--predicate", ff->predicate, "Only this predicate (works_at, lives_in, likes, is, ...)");
  f->add_option("--as-of", ff->as_of, "Facts valid at this time");
  f->add_flag("--history", ff->history, "Every version, closed ones included");
  f->callback([=] { *run = [=] { return RunFacts(*ff); }; });

  auto cf = std::make_shared<ConsolidateFlags>();
  CLI::App* c = m->add_subcommand("consolidate", "Summarize old episodes, decay importance, archive what fades");
  AddStoreFlags(c, cf->s, false);
  c->add_option("--older-than-days", cf->older_than_days, "Summarize episodes older than this")->capture_default_str();
  c->add_option("--half-life-days", cf->half_life_days, "Importance half-life")->capture_default_str();
  c->add_option("--archive-below", cf->archive_below, "Archive below this importance")->capture_default_str();
  c->callback([=] { *run = [=] { return RunConsolidate(*cf); }; });

  // `cairn eval locomo`, next to the other benchmarks under `eval` (registered before this).
  CLI::App* eval = nullptr;
  try {
    eval = app.get_subcommand("eval");
  } catch (const CLI::OptionNotFound&) {
    eval = app.add_subcommand("eval", "Score on labelled benchmarks");
  }
  auto lf = std::make_shared<LocomoFlags>();
  CLI::App* l = eval->add_subcommand("locomo", "Evidence recall@5/10/20 of memory recall on LoCoMo conversations");
  l->add_option("--data", lf->data, "The LoCoMo JSON file")->required();
  l->add_option("--work-dir", lf->work_dir, "Where to build the stores (default: a temporary directory, removed)");
  l->add_option("--dim", lf->dim, "Embedding dimension")->capture_default_str()->check(CLI::Range(size_t{8}, size_t{4096}));
  l->add_option("--max-samples", lf->max_samples, "Only the first N conversations (0 = all)")->capture_default_str();
  l->add_flag("--no-speaker-prefix", lf->no_speaker_prefix, "Do not prepend \"Speaker: \" to every turn");
  l->add_option("--vector-weight", lf->recall.vector_weight, "Fusion weight of vector similarity")
      ->capture_default_str();
  l->add_option("--bm25-weight", lf->recall.bm25_weight, "Fusion weight of BM25")->capture_default_str();
  l->add_option("--graph-weight", lf->recall.graph_weight, "Fusion weight of entity-graph expansion")
      ->capture_default_str();
  l->add_option("--recency-weight", lf->recall.recency_weight, "Fusion weight of recency")->capture_default_str();
  l->add_option("--importance-weight", lf->recall.importance_weight, "Fusion weight of importance")
      ->capture_default_str();
  l->add_option("--context-weight", lf->recall.context_weight, "BM25 weight of the preceding turns' text")
      ->capture_default_str();
  l->add_option("--date-weight", lf->recall.date_weight, "BM25 weight of the turn's day as words")
      ->capture_default_str();
  l->add_option("--speaker-boost", lf->recall.speaker_boost, "BM25 factor for turns of the speaker a question names")
      ->capture_default_str();
  l->add_option("--feedback-terms", lf->recall.feedback_terms, "Pseudo-relevance feedback terms (0 = off)")
      ->capture_default_str();
  AddJsonFlags(l, &lf->json, &lf->json_out);
  l->callback([=] { *run = [=] { return RunLocomo(*lf); }; });
}

}  // namespace cairn::cli
