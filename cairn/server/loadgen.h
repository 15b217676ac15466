// cairn/server/loadgen.h — a closed-loop load generator for OpenAI-compatible
// streaming chat endpoints (`cairn bench serve`).
//
// N clients, each on its own thread and connection, send their requests one after
// another to POST {base_url}/v1/chat/completions with "stream": true and read the
// server-sent events as they arrive. Per request it records the time to the first
// content chunk (TTFT), the gaps between later content chunks (inter-token latency,
// ITL: the server sends one chunk per decoded token), and the generated token count
// (the usage chunk's completion_tokens when the server sends one, else the number of
// content chunks). Aggregate throughput is all generated tokens over the wall time
// from the first request sent to the last response finished; that includes the
// ramps (every prompt's prefill, clients that started or finished early). The
// steady-state decode rate counts only the content chunks that arrived while every
// client was streaming: from the moment the last client got the first token of its
// first request to the moment the first client got the last token of its last
// request (a client that waits for its next request's first token within that
// window is still counted as active: the loop is closed).
//
// Prompts are synthetic and seeded: every request shares one system prompt (so a
// server's prefix cache can reuse it) and has its own user message, so the texts are
// reproducible run to run and distinct across clients and requests.
//
// Thread-safety: RunLoad is reentrant; SseParser is a value used by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::server {

// Splits a text/event-stream body, fed in arbitrary pieces, into events and hands
// each event's data (its `data:` lines joined by '\n') to the callback. Comment
// lines (":...") and other fields are ignored; CRLF, CR and LF line ends are accepted.
class SseParser {
 public:
  using OnData = std::function<void(std::string_view data)>;
  void Feed(std::string_view bytes, const OnData& on_data);
  // Dispatches an event left without its closing blank line (a server that closed early).
  void Finish(const OnData& on_data);

 private:
  void Line(std::string_view line, const OnData& on_data);
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;
};

// The value below which a fraction `p` (0..1) of `values` lies, by linear
// interpolation between closest ranks; 0 for no values.
double Percentile(std::vector<double> values, double p);

// About `words` space-separated words drawn from a fixed English word list by `seed`
// (most tokenizers spend one or two tokens per word).
std::string SyntheticText(uint64_t seed, int words);

struct LoadOptions {
  std::string base_url;  // "http://host:port" (no trailing /v1)
  std::string api_key;   // sent as "Authorization: Bearer KEY" when not empty
  std::string model;     // the "model" field of every request
  int clients = 1;
  int requests_per_client = 4;
  int max_tokens = 64;
  int prompt_tokens = 128;  // about half in the shared system prompt, half per request
  double temperature = 1.0;
  bool ignore_eos = false;  // sends "ignore_eos": true (a llama-server extension cairn serve has too)
  uint64_t seed = 1;        // prompts and each request's sampling seed derive from it
  double timeout_s = 600;   // per request (connect, and each read)
  // Called after each finished request (from the client threads, serialized).
  std::function<void(int done, int total)> progress;
};

struct RequestSample {
  int status = 0;               // HTTP status; 0 when no response came (connection failed)
  std::string error;            // why the request failed; empty on success
  double start_s = 0;           // since the run began
  double end_s = 0;
  double ttft_s = -1;           // -1: no content arrived
  std::vector<double> itl_s;    // gaps between consecutive content chunks
  int64_t content_chunks = 0;
  int64_t completion_tokens = 0;  // from usage, else content_chunks
  std::string finish_reason;
};

struct LoadResult {
  int clients = 0;
  int requests = 0;
  int ok = 0;
  std::map<int, int> errors_by_status;  // status (0: no response) -> count
  double wall_s = 0;
  int64_t generated_tokens = 0;
  double tokens_per_s = 0;  // generated_tokens / wall_s
  double ttft_p50_s = 0, ttft_p99_s = 0;
  double itl_p50_s = 0, itl_p99_s = 0;
  // The steady-state window (see the top of this file); 0 when it is empty.
  double steady_s = 0;
  int64_t steady_chunks = 0;
  double steady_tokens_per_s = 0;  // steady_chunks / steady_s
  // CPU time of this process (user + system) during the run: the load generator's own
  // cost, which shares the machine with a local server.
  double client_cpu_s = 0;
  std::vector<RequestSample> samples;
};

// The steady-state window of per-client request samples (each client's requests in
// order) and the content chunks that arrived inside it; sets steady_s, steady_chunks
// and steady_tokens_per_s of `*result`.
void SteadyWindow(const std::vector<std::vector<RequestSample>>& per_client, LoadResult* result);

// The chat request body of request `request` of client `client`.
std::string ChatRequestBody(const LoadOptions& options, int client, int request);

// Runs the load; fails only on bad options. Errors of individual requests are
// counted in the result (errors_by_status), not returned.
absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options);

// The server's batched steps by what they held, summed over its models, from the
// cairn_llm_step_seconds histograms of its Prometheus text (GET /metrics).
struct StepTotals {
  // [0] decode tokens only, [1] decode and prompt tokens (mixed), [2] prompt only.
  double count[3] = {0, 0, 0};
  double seconds[3] = {0, 0, 0};
};
StepTotals ParseStepTotals(std::string_view prometheus_text);

// GET {base_url}{path} as text; errors when there is no 200 answer.
absl::StatusOr<std::string> FetchText(const std::string& base_url, const std::string& api_key,
                                      const std::string& path, double timeout_s);

// The id of the first model GET {base_url}/v1/models lists.
absl::StatusOr<std::string> FirstModelId(const std::string& base_url, const std::string& api_key, double timeout_s);

}  // namespace cairn::server
