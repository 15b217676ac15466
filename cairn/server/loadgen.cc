#include "cairn/server/loadgen.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include <sys/resource.h>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace cairn::server {

// ------------------------------------------------------------------------ SSE

void SseParser::Feed(std::string_view bytes, const OnData& on_data) {
  for (char c : bytes) {
    if (c == '\n' && after_cr_) {  // the LF of a CRLF: the line already ended at the CR
      after_cr_ = false;
      continue;
    }
    after_cr_ = false;
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      Line(line_, on_data);
      line_.clear();
    } else {
      line_.push_back(c);
    }
  }
}

void SseParser::Finish(const OnData& on_data) {
  if (!line_.empty()) Line(line_, on_data);
  line_.clear();
  Line("", on_data);
}

void SseParser::Line(std::string_view line, const OnData& on_data) {
  if (line.empty()) {  // the end of an event
    if (has_data_) on_data(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line[0] == ':') return;  // a comment (keep-alive)
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (field != "data") return;
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

// ------------------------------------------------------------------ helpers

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

void SteadyWindow(const std::vector<std::vector<RequestSample>>& per_client, LoadResult* r) {
  r->steady_s = 0;
  r->steady_chunks = 0;
  r->steady_tokens_per_s = 0;
  // Arrival time of every content chunk: the request's start + TTFT + the gaps.
  auto arrivals = [](const RequestSample& s) {
    std::vector<double> t;
    if (s.ttft_s < 0) return t;
    double at = s.start_s + s.ttft_s;
    t.push_back(at);
    for (double gap : s.itl_s) t.push_back(at += gap);
    return t;
  };
  double begin = 0, end = 0;
  bool first = true;
  for (const std::vector<RequestSample>& samples : per_client) {
    if (samples.empty()) return;
    const std::vector<double> head = arrivals(samples.front());
    const std::vector<double> tail = arrivals(samples.back());
    if (head.empty() || tail.empty()) return;  // a client never streamed: no steady state
    begin = first ? head.front() : std::max(begin, head.front());
    end = first ? tail.back() : std::min(end, tail.back());
    first = false;
  }
  if (first || !(end > begin)) return;
  for (const std::vector<RequestSample>& samples : per_client) {
    for (const RequestSample& s : samples) {
      for (double t : arrivals(s)) r->steady_chunks += t > begin && t <= end;
    }
  }
  r->steady_s = end - begin;
  r->steady_tokens_per_s = static_cast<double>(r->steady_chunks) / r->steady_s;
}

std::string SyntheticText(uint64_t seed, int words) {
  static constexpr const char* kWords[] = {
      "pump",    "valve",  "sensor", "pressure", "reading", "north",  "station", "line",    "motor",  "alarm",
      "flow",    "tank",   "level",  "report",   "shift",   "check",  "the",     "of",      "and",    "a",
      "to",      "in",     "is",     "was",      "for",     "on",     "with",    "after",   "before", "during",
      "high",    "low",    "stable", "rising",   "falling", "normal", "warm",    "cold",    "water",  "power",
      "cooling", "filter", "hour",   "minute",   "today",   "night",  "field",   "crew",    "note",   "open",
      "closed",  "start",  "stop",   "fault",    "repair",  "old",    "new",     "second",  "third",  "seven",
      "what",    "why",    "how",    "should",   "we",      "do",     "next",    "summary", "please", "explain"};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, std::size(kWords) - 1);
  std::string out;
  for (int i = 0; i < words; ++i) {
    if (i) out.push_back(' ');
    out += kWords[pick(rng)];
  }
  return out;
}

std::string ChatRequestBody(const LoadOptions& o, int client, int request) {
  // Roughly one word per token: half the prompt is the shared system prompt.
  const int system_words = std::max(1, o.prompt_tokens / 2);
  const int user_words = std::max(1, o.prompt_tokens - system_words);
  const uint64_t request_seed = o.seed * 1000003ull + static_cast<uint64_t>(client) * 10007ull +
                                static_cast<uint64_t>(request);
  nlohmann::json body = {
      {"model", o.model},
      {"messages",
       {{{"role", "system"}, {"content", "You are the maintenance assistant. " + SyntheticText(o.seed, system_words)}},
        {{"role", "user"},
         {"content", fmt::format("Client {} request {}: {}", client, request,
                                 SyntheticText(request_seed ^ 0x9e3779b97f4a7c15ull, user_words))}}}},
      {"max_tokens", o.max_tokens},
      {"temperature", o.temperature},
      {"seed", request_seed % (1ull << 31)},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}}};
  if (o.ignore_eos) body["ignore_eos"] = true;
  return body.dump();
}

namespace {

using Clock = std::chrono::steady_clock;

double ProcessCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

absl::Status CheckUrl(const std::string& url) {
  const bool http = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
  const size_t host = url.find("://") + 3;
  if (!http || url.size() <= host || url.find('/', host) != std::string::npos || !httplib::Client(url).is_valid()) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not an http://HOST:PORT URL", url));
  }
  return absl::OkStatus();
}

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

std::unique_ptr<httplib::Client> NewClient(const std::string& base_url, const std::string& api_key, double timeout_s) {
  auto cli = std::make_unique<httplib::Client>(base_url);
  const auto secs = static_cast<time_t>(timeout_s);
  const auto usecs = static_cast<time_t>((timeout_s - static_cast<double>(secs)) * 1e6);
  cli->set_connection_timeout(secs, usecs);
  cli->set_read_timeout(secs, usecs);
  cli->set_write_timeout(secs, usecs);
  cli->set_keep_alive(true);
  // httplib writes a request's headers and body separately; with Nagle's algorithm the
  // body would wait for the server's (possibly delayed) ACK of the headers.
  cli->set_tcp_nodelay(true);
  if (!api_key.empty()) cli->set_bearer_token_auth(api_key);
  return cli;
}

// One streamed chat request; `t0` is the run's start.
RequestSample StreamOne(httplib::Client& cli, const std::string& body, Clock::time_point t0) {
  RequestSample s;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  std::string error_body;
  SseParser parser;
  Clock::time_point last;
  bool done = false;
  bool bad_event = false;
  const Clock::time_point start = Clock::now();
  s.start_s = Seconds(t0, start);
  auto on_data = [&](std::string_view data) {
    const Clock::time_point now = Clock::now();
    if (data == "[DONE]") {
      done = true;
      return;
    }
    nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      bad_event = true;
      return;
    }
    if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
      if (const auto c = u->find("completion_tokens"); c != u->end() && c->is_number_integer()) {
        s.completion_tokens = c->get<int64_t>();
      }
    }
    const auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    const nlohmann::json& choice = (*choices)[0];
    if (const auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) s.finish_reason = *f;
    const auto delta = choice.find("delta");
    if (delta == choice.end() || !delta->is_object()) return;
    const auto content = delta->find("content");
    if (content == delta->end() || !content->is_string() || content->get_ref<const std::string&>().empty()) return;
    if (s.content_chunks == 0) {
      s.ttft_s = Seconds(start, now);
    } else {
      s.itl_s.push_back(Seconds(last, now));
    }
    last = now;
    ++s.content_chunks;
  };
  req.response_handler = [&](const httplib::Response& res) {
    s.status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (s.status != 200) {
      if (error_body.size() < 4096) error_body.append(data, std::min<size_t>(n, 4096 - error_body.size()));
      return true;
    }
    parser.Feed(std::string_view(data, n), on_data);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = cli.send(req, res, err);
  parser.Finish(on_data);
  s.end_s = Seconds(t0, Clock::now());
  if (!sent) {
    s.error = s.status == 0 ? fmt::format("no response: {}", httplib::to_string(err))
                            : fmt::format("the response broke off: {}", httplib::to_string(err));
  } else if (s.status != 200) {
    nlohmann::json j = nlohmann::json::parse(error_body, nullptr, false);
    std::string message = error_body.substr(0, 200);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string()) {
      message = j["error"]["message"];
    }
    s.error = fmt::format("HTTP {}: {}", s.status, message);
  } else if (bad_event) {
    s.error = "an event's data is not JSON";
  } else if (!done) {
    s.error = "the stream ended without data: [DONE]";
  }
  if (s.completion_tokens == 0) s.completion_tokens = s.content_chunks;
  return s;
}

}  // namespace

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& o) {
  if (o.base_url.empty()) return absl::InvalidArgumentError("no server URL");
  if (o.clients < 1 || o.clients > 4096) {
    return absl::InvalidArgumentError(fmt::format("clients: {} is not between 1 and 4096", o.clients));
  }
  if (o.requests_per_client < 1) return absl::InvalidArgumentError("requests per client must be at least 1");
  if (o.max_tokens < 1) return absl::InvalidArgumentError("max_tokens must be at least 1");
  if (o.prompt_tokens < 2) return absl::InvalidArgumentError("prompt tokens must be at least 2");
  if (!(o.timeout_s > 0)) return absl::InvalidArgumentError("the timeout must be positive");
  if (absl::Status st = CheckUrl(o.base_url); !st.ok()) return st;

  LoadResult r;
  r.clients = o.clients;
  r.requests = o.clients * o.requests_per_client;
  std::vector<std::vector<RequestSample>> per_client(static_cast<size_t>(o.clients));
  std::mutex progress_mu;
  int finished = 0;
  const double cpu0 = ProcessCpuSeconds();
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(o.clients));
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      auto cli = NewClient(o.base_url, o.api_key, o.timeout_s);
      for (int i = 0; i < o.requests_per_client; ++i) {
        per_client[static_cast<size_t>(c)].push_back(StreamOne(*cli, ChatRequestBody(o, c, i), t0));
        std::lock_guard<std::mutex> lock(progress_mu);
        ++finished;
        if (o.progress) o.progress(finished, r.requests);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  r.client_cpu_s = ProcessCpuSeconds() - cpu0;
  SteadyWindow(per_client, &r);

  std::vector<double> ttft, itl;
  double first = 0, last = 0;
  bool any = false;
  for (auto& samples : per_client) {
    for (RequestSample& s : samples) {
      first = any ? std::min(first, s.start_s) : s.start_s;
      last = any ? std::max(last, s.end_s) : s.end_s;
      any = true;
      if (!s.error.empty()) {
        ++r.errors_by_status[s.status];
      } else {
        ++r.ok;
      }
      // Tokens and latencies of what did arrive count even when the request failed late.
      r.generated_tokens += s.completion_tokens;
      if (s.ttft_s >= 0) ttft.push_back(s.ttft_s);
      itl.insert(itl.end(), s.itl_s.begin(), s.itl_s.end());
      r.samples.push_back(std::move(s));
    }
  }
  r.wall_s = last - first;
  r.tokens_per_s = r.wall_s > 0 ? static_cast<double>(r.generated_tokens) / r.wall_s : 0;
  r.ttft_p50_s = Percentile(ttft, 0.5);
  r.ttft_p99_s = Percentile(ttft, 0.99);
  r.itl_p50_s = Percentile(itl, 0.5);
  r.itl_p99_s = Percentile(itl, 0.99);
  return r;
}

StepTotals ParseStepTotals(std::string_view text) {
  StepTotals t;
  constexpr std::string_view kName = "cairn_llm_step_seconds_";
  static constexpr std::string_view kKinds[3] = {"kind=\"decode\"", "kind=\"mixed\"", "kind=\"prefill\""};
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.substr(0, kName.size()) != kName) continue;
    const std::string_view rest = line.substr(kName.size());
    const bool is_sum = rest.substr(0, 4) == "sum{";
    if (!is_sum && rest.substr(0, 6) != "count{") continue;
    const size_t close = rest.find('}');
    if (close == std::string_view::npos) continue;
    const std::string_view labels = rest.substr(0, close);
    for (int k = 0; k < 3; ++k) {
      if (labels.find(kKinds[k]) == std::string_view::npos) continue;
      const std::string value(rest.substr(close + 1));
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || !std::isfinite(v)) break;
      (is_sum ? t.seconds : t.count)[k] += v;
      break;
    }
  }
  return t;
}

absl::StatusOr<std::string> FetchText(const std::string& base_url, const std::string& api_key,
                                      const std::string& path, double timeout_s) {
  if (absl::Status st = CheckUrl(base_url); !st.ok()) return st;
  auto cli = NewClient(base_url, api_key, timeout_s);
  httplib::Result res = cli->Get(path);
  if (!res) {
    return absl::UnavailableError(
        fmt::format("GET {}{}: no response ({})", base_url, path, httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    return absl::FailedPreconditionError(fmt::format("GET {}{}: HTTP {}", base_url, path, res->status));
  }
  return std::move(res->body);
}

absl::StatusOr<std::string> FirstModelId(const std::string& base_url, const std::string& api_key, double timeout_s) {
  if (absl::Status st = CheckUrl(base_url); !st.ok()) return st;
  auto cli = NewClient(base_url, api_key, timeout_s);
  httplib::Result res = cli->Get("/v1/models");
  if (!res) {
    return absl::UnavailableError(
        fmt::format("GET {}/v1/models: no response ({})", base_url, httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    return absl::FailedPreconditionError(
        fmt::format("GET {}/v1/models: HTTP {}: {}", base_url, res->status, res->body.substr(0, 200)));
  }
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
      j["data"][0].is_object() && j["data"][0].contains("id") && j["data"][0]["id"].is_string()) {
    return j["data"][0]["id"].get<std::string>();
  }
  return absl::FailedPreconditionError(fmt::format("GET {}/v1/models: no model listed", base_url));
}

}  // namespace cairn::server
