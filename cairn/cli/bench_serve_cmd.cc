// `cairn bench serve`: N concurrent streaming chat clients against an
// OpenAI-compatible server (cairn/server/loadgen.h), for each N of --clients:
// aggregate generated tokens/s, time to first token and inter-token latency
// percentiles, errors by status, the steady-state decode rate (every client
// streaming; loadgen.h), the CPU seconds of the load generator itself and of the
// server, and the server's step times (from its /metrics); then the concurrency
// targets as ratios.
//
// With --url it measures a running server. With --model it starts `cairn serve`
// itself (this same binary, as a child process on a free loopback port, with
// --slots = the largest N unless given), waits for its `listening on` line, and at
// the end reads the child's peak resident memory (VmHWM) before stopping it.
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/model_config.h"
#include "cairn/server/loadgen.h"

namespace cairn::cli {
namespace {

struct ServeBenchFlags {
  std::string url;
  std::string api_key;
  std::string model;       // a .gguf file to serve
  std::string model_name;  // the request's "model"; default: the first /v1/models lists
  std::vector<int> clients = {1, 4, 16};
  int requests = 4;
  int max_tokens = 64;
  int prompt_tokens = 128;
  double temperature = 1.0;
  uint64_t seed = 1;
  int slots = 0;  // --model: 0 = the largest client count
  int ctx = 0;    // --model: tokens per slot (0 = the server's default)
  int server_threads = 0;  // --model: the server's forward-pass threads (0 = its default)
  int prefill_chunk = 0;   // --model: the server's --prefill-chunk (0 = its default)
  std::string chat_template;  // --model: the server's --template
  bool ignore_eos = false;
  int warmup = 1;
  double timeout_s = 600;
  bool server_log = false;
  bool json = false;
  std::string json_out;
};

// User + system CPU seconds of a process (its threads, living and ended), from
// /proc/PID/stat; -1 when unreadable.
double ProcCpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; the fields after it are plain.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields;
  size_t pos = close + 2;
  while (pos < stat.size() && fields.size() < 13) {
    const size_t sp = stat.find(' ', pos);
    fields.push_back(stat.substr(pos, sp - pos));
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  if (fields.size() < 13) return -1;  // utime and stime are fields 14 and 15 (11 and 12 after the name)
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::strtod(fields[11].c_str(), nullptr) + std::strtod(fields[12].c_str(), nullptr)) / ticks;
}

uint64_t ProcStatusBytes(pid_t pid, const std::string& key) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024;
  }
  return 0;
}

// `cairn serve` as a child process. Its stdout and stderr go into one pipe that a
// thread drains (keeping the last lines for error messages) so the child never
// blocks on a full pipe.
class ServeChild {
 public:
  ~ServeChild() { Stop(); }

  // Starts the child and waits for its listening line; returns the URL.
  absl::StatusOr<std::string> Start(const std::vector<std::string>& args, bool echo, double timeout_s) {
    echo_ = echo;
    int fds[2];
    if (::pipe(fds) != 0) return absl::InternalError("pipe failed");
    std::string self(4096, '\0');
    const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
    if (n <= 0) return absl::InternalError("cannot find this executable (/proc/self/exe)");
    self.resize(static_cast<size_t>(n));
    std::vector<std::string> argv_s = {self};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return absl::InternalError("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark
      if (::getppid() != parent) ::_exit(1);
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    read_fd_ = fds[0];
    reader_ = std::thread([this] { Drain(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [this] { return !url_.empty() || eof_; });
    if (url_.empty()) {
      std::string tail;
      for (const std::string& l : lines_) tail += "\n  " + l;
      return absl::UnavailableError(fmt::format("cairn serve did not print its listening line{}{}",
                                                eof_ ? " (it exited)" : fmt::format(" within {:.0f} s", timeout_s),
                                                tail.empty() ? "" : ":" + tail));
    }
    return url_;
  }

  pid_t pid() const { return pid_; }

  // SIGTERM, up to 30 s for a clean exit, then SIGKILL; the exit status (-1 when killed).
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 300 && !exited; ++i) {
      exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!exited) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    if (read_fd_ >= 0) ::close(read_fd_);
    read_fd_ = -1;
    return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  void Drain() {
    std::string pending;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(read_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      pending.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        Line(pending.substr(0, nl));
        pending.erase(0, nl + 1);
      }
    }
    if (!pending.empty()) Line(pending);
    std::lock_guard<std::mutex> lock(mu_);
    eof_ = true;
    cv_.notify_all();
  }
  void Line(const std::string& line) {
    if (echo_) fmt::print(stderr, "  serve| {}\n", line);
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(line);
    if (lines_.size() > 20) lines_.pop_front();
    constexpr std::string_view kMark = "cairn serve: listening on ";
    if (size_t at = line.find(kMark); url_.empty() && at != std::string::npos) {
      std::string url = line.substr(at + kMark.size());
      url = url.substr(0, url.find_first_of(" \t\r"));
      url_ = url;
      cv_.notify_all();
    }
  }

  pid_t pid_ = -1;
  int read_fd_ = -1;
  bool echo_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;
  std::string url_;
  bool eof_ = false;
};

std::string Ms(double seconds) { return fmt::format("{:.1f}", seconds * 1e3); }

int RunServeBench(const ServeBenchFlags& f) {
  constexpr const char* kName = "cairn bench serve";
  if (f.url.empty() == f.model.empty()) {
    fmt::print(stderr, "{}: give exactly one of --url (a running server) and --model (a .gguf file to serve)\n", kName);
    return 2;
  }
  std::vector<int> clients = f.clients;
  for (int c : clients) {
    if (c < 1 || c > 1024) {
      fmt::print(stderr, "{}: --clients: {} is not between 1 and 1024\n", kName, c);
      return 2;
    }
  }
  std::sort(clients.begin(), clients.end());
  clients.erase(std::unique(clients.begin(), clients.end()), clients.end());
  const int slots = f.slots > 0 ? f.slots : clients.back();

  std::string url = f.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() > 3 && url.compare(url.size() - 3, 3, "/v1") == 0) url.resize(url.size() - 3);

  // --model: the weights' size and the KV cache the slots may hold, for the memory bound.
  uint64_t file_bytes = 0, kv_bytes = 0, compute_bytes = 0;
  uint32_t ctx_for_bound = 0;
  std::unique_ptr<ServeChild> child;
  std::filesystem::path data_dir;
  if (!f.model.empty()) {
    auto file = infer::GgufFile::Open(f.model);
    if (!file.ok()) {
      fmt::print(stderr, "{}: {}\n", kName, std::string(file.status().message()));
      return 1;
    }
    auto config = infer::ReadModelConfig(**file);
    if (!config.ok()) {
      fmt::print(stderr, "{}: {}: {}\n", kName, f.model, std::string(config.status().message()));
      return 1;
    }
    // The server's default splits the model's context among the slots.
    ctx_for_bound = f.ctx > 0 ? static_cast<uint32_t>(f.ctx)
                              : std::max<uint32_t>(1, config->n_ctx_train / static_cast<uint32_t>(slots));
    const infer::MemoryEstimate mem = infer::EstimateMemory(**file, *config, ctx_for_bound);
    file_bytes = (*file)->file_size();
    kv_bytes = mem.kv_cache * static_cast<uint64_t>(slots);
    compute_bytes = mem.compute;

    std::string pattern = (std::filesystem::temp_directory_path() / "cairn-bench-serve-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      fmt::print(stderr, "{}: cannot create a temporary directory\n", kName);
      return 1;
    }
    data_dir = pattern;
    std::vector<std::string> args = {"serve", "--model", f.model, "--listen", "127.0.0.1:0",
                                     "--data-dir", data_dir.string(), "--slots", std::to_string(slots)};
    if (f.ctx > 0) args.insert(args.end(), {"--ctx", std::to_string(f.ctx)});
    if (f.server_threads > 0) args.insert(args.end(), {"--threads", std::to_string(f.server_threads)});
    if (f.prefill_chunk > 0) args.insert(args.end(), {"--prefill-chunk", std::to_string(f.prefill_chunk)});
    if (!f.chat_template.empty()) args.insert(args.end(), {"--template", f.chat_template});
    if (!f.model_name.empty()) args.insert(args.end(), {"--model-name", f.model_name});
    if (!f.api_key.empty()) args.insert(args.end(), {"--api-key", f.api_key});
    fmt::print(stderr, "{}: starting cairn serve --model {} --slots {}\n", kName, f.model, slots);
    child = std::make_unique<ServeChild>();
    absl::StatusOr<std::string> started = child->Start(args, f.server_log, 300);
    if (!started.ok()) {
      fmt::print(stderr, "{}: {}\n", kName, std::string(started.status().message()));
      child->Stop();
      std::filesystem::remove_all(data_dir);
      return 1;
    }
    url = *started;
  }
  // Whatever happens below, the child stops and its directory goes.
  struct Cleanup {
    std::unique_ptr<ServeChild>* child;
    std::filesystem::path dir;
    ~Cleanup() {
      if (*child) (*child)->Stop();
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{&child, data_dir};

  std::string model_name = f.model_name;
  if (model_name.empty()) {
    absl::StatusOr<std::string> id = server::FirstModelId(url, f.api_key, std::min(f.timeout_s, 60.0));
    if (!id.ok()) {
      fmt::print(stderr, "{}: {}\n", kName, std::string(id.status().message()));
      return 1;
    }
    model_name = *id;
  }

  server::LoadOptions base;
  base.base_url = url;
  base.api_key = f.api_key;
  base.model = model_name;
  base.max_tokens = f.max_tokens;
  base.prompt_tokens = f.prompt_tokens;
  base.temperature = f.temperature;
  base.seed = f.seed;
  base.ignore_eos = f.ignore_eos;
  base.timeout_s = f.timeout_s;
  if (f.warmup > 0) {  // pages the weights in; not measured
    server::LoadOptions w = base;
    w.requests_per_client = f.warmup;
    w.seed = base.seed + 1000;
    absl::StatusOr<server::LoadResult> r = server::RunLoad(w);
    if (!r.ok()) {
      fmt::print(stderr, "{}: {}\n", kName, std::string(r.status().message()));
      return 1;
    }
    if (r->ok == 0) {
      fmt::print(stderr, "{}: the warm-up request failed: {}\n", kName, r->samples.front().error);
      return 1;
    }
  }

  // Per run: the server's CPU seconds (--model only) and its step totals (from
  // /metrics when it exposes cairn_llm_step_seconds; cairn serve does).
  struct ServerSide {
    double cpu_s = -1;
    server::StepTotals steps;
    bool have_steps = false;
  };
  auto step_totals = [&]() -> std::optional<server::StepTotals> {
    absl::StatusOr<std::string> text = server::FetchText(url, f.api_key, "/metrics", std::min(f.timeout_s, 30.0));
    if (!text.ok() || text->find("cairn_llm_step_seconds") == std::string::npos) return std::nullopt;
    return server::ParseStepTotals(*text);
  };
  std::vector<ServerSide> server_side;
  std::vector<server::LoadResult> results;
  for (int n : clients) {
    const double cpu0 = child ? ProcCpuSeconds(child->pid()) : -1;
    const std::optional<server::StepTotals> steps0 = step_totals();
    server::LoadOptions o = base;
    o.clients = n;
    o.requests_per_client = f.requests;
    int last_decile = 0;
    o.progress = [&](int done, int total) {
      const int decile = done * 4 / total;
      if (decile == last_decile && done != total) return;
      last_decile = decile;
      fmt::print(stderr, "{}: {} client{}: {}/{} requests\n", kName, n, n == 1 ? "" : "s", done, total);
    };
    absl::StatusOr<server::LoadResult> r = server::RunLoad(o);
    if (!r.ok()) {
      fmt::print(stderr, "{}: {}\n", kName, std::string(r.status().message()));
      return 1;
    }
    ServerSide side;
    if (cpu0 >= 0) {
      const double cpu1 = ProcCpuSeconds(child->pid());
      if (cpu1 >= 0) side.cpu_s = cpu1 - cpu0;
    }
    if (const std::optional<server::StepTotals> steps1 = step_totals(); steps0 && steps1) {
      for (int k = 0; k < 3; ++k) {
        side.steps.count[k] = steps1->count[k] - steps0->count[k];
        side.steps.seconds[k] = steps1->seconds[k] - steps0->seconds[k];
      }
      side.have_steps = true;
    }
    server_side.push_back(side);
    for (const server::RequestSample& s : r->samples) {
      if (!s.error.empty()) {
        fmt::print(stderr, "{}: {} clients: first error: {}\n", kName, n, s.error);
        break;
      }
    }
    results.push_back(std::move(*r));
  }

  uint64_t peak_rss = 0;
  int child_exit = 0;
  if (child) {
    peak_rss = ProcStatusBytes(child->pid(), "VmHWM:");
    child_exit = child->Stop();
  }

  std::string table =
      fmt::format("{:>7}  {:>8}  {:>6}  {:>8}  {:>9}  {:>9}  {:>10}  {:>10}  {:>9}  {:>9}  {:>8}  {:>8}\n", "clients",
                  "requests", "errors", "gen tok", "gen tok/s", "steady/s", "TTFT p50", "TTFT p99", "ITL p50",
                  "ITL p99", "cli CPU", "srv CPU");
  std::string steps_text;
  nlohmann::json runs = nlohmann::json::array();
  for (size_t ri = 0; ri < results.size(); ++ri) {
    const server::LoadResult& r = results[ri];
    const ServerSide& side = server_side[ri];
    int errors = 0;
    nlohmann::json by_status = nlohmann::json::object();
    for (const auto& [status, count] : r.errors_by_status) {
      errors += count;
      by_status[std::to_string(status)] = count;
    }
    table += fmt::format("{:>7}  {:>8}  {:>6}  {:>8}  {:>9.1f}  {:>9.1f}  {:>7} ms  {:>7} ms  {:>6} ms  {:>6} ms"
                         "  {:>6.1f} s  {:>8}\n",
                         r.clients, r.requests, errors, r.generated_tokens, r.tokens_per_s, r.steady_tokens_per_s,
                         Ms(r.ttft_p50_s), Ms(r.ttft_p99_s), Ms(r.itl_p50_s), Ms(r.itl_p99_s), r.client_cpu_s,
                         side.cpu_s >= 0 ? fmt::format("{:.1f} s", side.cpu_s) : std::string("-"));
    nlohmann::json steps_json;
    if (side.have_steps) {
      static constexpr const char* kKinds[3] = {"decode", "mixed", "prefill"};
      std::string line;
      for (int k = 0; k < 3; ++k) {
        const double n_steps = side.steps.count[k];
        const double mean = n_steps > 0 ? side.steps.seconds[k] / n_steps : 0;
        line += fmt::format("{}{} {:.0f} x {} ms", line.empty() ? "" : ", ", kKinds[k], n_steps, Ms(mean));
        steps_json[kKinds[k]] = {{"steps", n_steps}, {"seconds", side.steps.seconds[k]}};
      }
      steps_text += fmt::format("server steps at {} client{} (count x mean): {}\n", r.clients,
                                r.clients == 1 ? "" : "s", line);
    }
    if (errors) {
      std::string list;
      for (const auto& [status, count] : r.errors_by_status) {
        list += fmt::format("{}{} x {}", list.empty() ? "" : ", ", count,
                            status == 0 ? std::string("no response") : fmt::format("HTTP {}", status));
      }
      table += fmt::format("         errors: {}\n", list);
    }
    runs.push_back({{"clients", r.clients},
                    {"requests", r.requests},
                    {"ok", r.ok},
                    {"errors", errors},
                    {"errors_by_status", by_status},
                    {"wall_seconds", r.wall_s},
                    {"generated_tokens", r.generated_tokens},
                    {"generated_tokens_per_s", r.tokens_per_s},
                    {"ttft_p50_s", r.ttft_p50_s},
                    {"ttft_p99_s", r.ttft_p99_s},
                    {"itl_p50_s", r.itl_p50_s},
                    {"itl_p99_s", r.itl_p99_s},
                    {"steady_seconds", r.steady_s},
                    {"steady_chunks", r.steady_chunks},
                    {"steady_tokens_per_s", r.steady_tokens_per_s},
                    {"client_cpu_seconds", r.client_cpu_s},
                    {"server_cpu_seconds", side.cpu_s >= 0 ? nlohmann::json(side.cpu_s) : nlohmann::json()},
                    {"server_steps", steps_json}});
  }
  table += steps_text;

  nlohmann::json j = {{"url", f.model.empty() ? url : ""},
                      {"model", model_name},
                      {"model_file", f.model},
                      {"requests_per_client", f.requests},
                      {"max_tokens", f.max_tokens},
                      {"prompt_tokens", f.prompt_tokens},
                      {"temperature", f.temperature},
                      {"seed", f.seed},
                      {"ignore_eos", f.ignore_eos},
                      {"runs", runs}};
  // The targets: throughput at the most clients against one client, and the tail
  // inter-token latency under that load against the single-client median.
  const server::LoadResult* one = results.front().clients == 1 ? &results.front() : nullptr;
  if (one != nullptr && results.size() > 1) {
    const server::LoadResult& most = results.back();
    // Decode throughput is the steady-state rate (no prefill ramps); the wall-time
    // ratio, which includes them, is printed beside it.
    const double speedup =
        one->steady_tokens_per_s > 0 ? most.steady_tokens_per_s / one->steady_tokens_per_s : 0;
    const double wall_speedup = one->tokens_per_s > 0 ? most.tokens_per_s / one->tokens_per_s : 0;
    const double itl_ratio = one->itl_p50_s > 0 ? most.itl_p99_s / one->itl_p50_s : 0;
    table += fmt::format(
        "steady decode throughput at {} clients vs 1: {:.2f}x (target >= 4x: {}); over the whole run: {:.2f}x\n",
        most.clients, speedup, speedup >= 4 ? "met" : "missed", wall_speedup);
    table += fmt::format("ITL p99 at {} clients vs ITL median at 1: {:.2f}x (target <= 2x: {})\n", most.clients,
                         itl_ratio, itl_ratio > 0 && itl_ratio <= 2 ? "met" : "missed");
    j["targets"] = {{"clients", most.clients},
                    {"throughput_ratio", speedup},
                    {"wall_throughput_ratio", wall_speedup},
                    {"throughput_ratio_target", 4.0},
                    {"itl_p99_vs_single_median", itl_ratio},
                    {"itl_ratio_target", 2.0}};
  }
  if (child) {
    // Weights (mapped), the KV cache of every slot at --ctx (or the server's default),
    // one batch of scratch, +10%, plus 64 MiB for the process itself (code, HTTP threads).
    const uint64_t limit =
        static_cast<uint64_t>(1.1 * static_cast<double>(file_bytes + kv_bytes + compute_bytes)) + (64ull << 20);
    table += fmt::format(
        "server peak resident memory: {} with {} slots (limit: file {} + KV cache {} x {} tokens {} + scratch {}, "
        "+10% + 64 MiB = {}): {}; exit {}\n",
        HumanBytes(static_cast<double>(peak_rss)), slots, HumanBytes(static_cast<double>(file_bytes)), slots,
        ctx_for_bound, HumanBytes(static_cast<double>(kv_bytes)), HumanBytes(static_cast<double>(compute_bytes)),
        HumanBytes(static_cast<double>(limit)), peak_rss <= limit ? "within" : "OVER", child_exit);
    j["server"] = {{"slots", slots},
                   {"ctx_for_bound", ctx_for_bound},
                   {"peak_rss_bytes", peak_rss},
                   {"file_bytes", file_bytes},
                   {"kv_cache_bytes", kv_bytes},
                   {"compute_bytes", compute_bytes},
                   {"rss_limit_bytes", limit},
                   {"rss_within_limit", peak_rss <= limit},
                   {"exit_status", child_exit}};
  }
  return EmitBenchResults(f.json, f.json_out, j, table);
}

}  // namespace

void AddServeBench(CLI::App* parent, Runner* run) {
  auto f = std::make_shared<ServeBenchFlags>();
  CLI::App* s = parent->add_subcommand(
      "serve", "Concurrent streaming chat clients against an OpenAI-compatible server: tokens/s, TTFT, ITL, errors");
  s->add_option("--url", f->url, "A running server (http://HOST:PORT)");
  s->add_option("-m,--model", f->model, "A .gguf model: start `cairn serve` on it for the run");
  s->add_option("--api-key", f->api_key, "Bearer key for the server (also passed to the started server)");
  s->add_option("--model-name", f->model_name, "The requests' model id (default: the first /v1/models lists)");
  s->add_option("--clients", f->clients, "Concurrent clients, one run each")->delimiter(',')->capture_default_str();
  s->add_option("--requests", f->requests, "Requests per client, sent one after another")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  s->add_option("--max-tokens", f->max_tokens, "max_tokens of every request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  s->add_option("--prompt-tokens", f->prompt_tokens,
                "About this many prompt words per request, half in a system prompt all requests share")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  s->add_option("--temperature", f->temperature, "Sampling temperature (each request has its own seed)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 2.0));
  s->add_option("--seed", f->seed, "Seed of the prompts and the requests' sampling seeds")->capture_default_str();
  s->add_option("--slots", f->slots, "With --model: the server's slots (default: the largest client count)")
      ->check(CLI::Range(1, 4096));
  s->add_option("--ctx", f->ctx, "With --model: the server's tokens per slot (default: the server's)")
      ->check(CLI::Range(1, 1 << 24));
  s->add_option("--server-threads", f->server_threads, "With --model: the server's forward-pass threads (--threads)")
      ->check(CLI::Range(1, 1024));
  s->add_option("--prefill-chunk", f->prefill_chunk,
                "With --model: the server's prompt tokens per step while others decode (--prefill-chunk)")
      ->check(CLI::Range(1, 1 << 16));
  s->add_option("--template", f->chat_template,
                "With --model: the server's chat template name, for models without one (e.g. chatml)");
  s->add_flag("--ignore-eos", f->ignore_eos,
              "Send \"ignore_eos\": true so every request decodes --max-tokens tokens (cairn serve, llama-server)");
  s->add_option("--warmup", f->warmup, "Unmeasured requests before the runs")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  s->add_option("--timeout", f->timeout_s, "Seconds a request may wait for the server (connect and each read)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  s->add_flag("--server-log", f->server_log, "With --model: copy the server's output to stderr");
  AddJsonFlags(s, &f->json, &f->json_out);
  s->callback([=] { *run = [=] { return RunServeBench(*f); }; });
}

}  // namespace cairn::cli
