// `cairn model …`: look inside GGUF model files and synthesize new ones.
//
// `inspect FILE` validates the whole file (cairn/infer/gguf.h) and prints what a user
// wants to know before running it: architecture and shape, parameter count, tensor
// types, tokenizer, chat template, the memory it needs, and whether cairn can run it.
// `synth` writes a model with random weights of a preset shape and weight type
// (cairn/infer/synth.h) that cairn and llama.cpp both load.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/model_config.h"
#include "cairn/infer/synth.h"

namespace cairn::cli {
namespace {

using infer::GgufFile;

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

// ------------------------------------------------------------------------- inspect

struct InspectFlags {
  std::string file;
  bool json = false;
  bool keys = false;
  bool tensors = false;
  uint32_t ctx = 0;
};

struct TypeCount {
  int tensors = 0;
  uint64_t bytes = 0;
  uint64_t params = 0;
};

std::vector<std::string> FirstLines(std::string_view text, size_t n) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size() && lines.size() < n) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::optional<uint32_t> OptU32(const GgufFile& g, std::string_view key) {
  auto v = g.GetU32(key);
  return v.ok() ? std::optional<uint32_t>(*v) : std::nullopt;
}

int RunInspect(const InspectFlags& f) {
  auto opened = GgufFile::Open(f.file);
  if (!opened.ok()) {
    fmt::print(stderr, "cairn model inspect: {}\n", Msg(opened.status()));
    return 1;
  }
  const GgufFile& g = **opened;
  nlohmann::json j;
  j["file"] = f.file;
  j["file_bytes"] = g.file_size();
  j["gguf_version"] = g.version();
  j["metadata_keys"] = g.metadata().size();
  j["tensor_count"] = g.tensors().size();
  j["alignment"] = g.alignment();

  std::map<std::string, TypeCount> types;
  for (const infer::GgufTensor& t : g.tensors()) {
    TypeCount& c = types[infer::TensorTypeName(t.type)];
    ++c.tensors;
    c.bytes += t.size;
    c.params += static_cast<uint64_t>(t.n_elements());
  }
  const uint64_t params = infer::ParameterCount(g);
  j["parameters"] = params;
  for (const auto& [name, c] : types) {
    j["tensor_types"][name] = {{"tensors", c.tensors}, {"bytes", c.bytes}, {"parameters", c.params}};
  }

  const std::string arch(g.GetString("general.architecture").value_or("(none)"));
  j["architecture"] = arch;
  if (auto name = g.GetString("general.name"); name.ok()) j["name"] = std::string(*name);

  // Tokenizer.
  const std::string tok_model(g.GetString("tokenizer.ggml.model").value_or(""));
  const uint64_t n_tokens = g.GetArraySize("tokenizer.ggml.tokens").value_or(0);
  nlohmann::json tok;
  tok["model"] = tok_model;
  if (auto pre = g.GetString("tokenizer.ggml.pre"); pre.ok()) tok["pre"] = std::string(*pre);
  tok["tokens"] = n_tokens;
  for (const char* id : {"bos", "eos", "unknown", "padding", "seperator", "cls", "mask"}) {
    if (auto v = OptU32(g, fmt::format("tokenizer.ggml.{}_token_id", id))) tok[std::string(id) + "_id"] = *v;
  }
  j["tokenizer"] = tok;
  const std::string chat_template(g.GetString("tokenizer.chat_template").value_or(""));
  j["chat_template"] = chat_template;

  // Hyperparameters and whether cairn can run the model.
  auto config = infer::ReadModelConfig(g);
  std::string runnable = "yes";
  std::optional<infer::MemoryEstimate> mem;
  if (!config.ok()) {
    runnable = Msg(config.status());
  } else {
    const infer::ModelConfig& c = *config;
    j["context_length"] = c.n_ctx_train;
    j["hyperparameters"] = {{"n_vocab", c.n_vocab},     {"n_ctx_train", c.n_ctx_train},
                            {"n_embd", c.n_embd},       {"n_ff", c.n_ff},
                            {"n_layer", c.n_layer},     {"n_head", c.n_head},
                            {"n_head_kv", c.n_head_kv}, {"head_dim", c.head_dim},
                            {"norm_eps", c.norm_eps},   {"norm", c.rms_norm ? "rms" : "layer"},
                            {"tied_embeddings", c.tied_embeddings}};
    if (c.is_encoder()) {
      j["hyperparameters"]["pooling"] = infer::PoolingName(c.pooling);
    } else {
      j["hyperparameters"]["rope"] = {{"type", c.rope_type == infer::RopeType::kNeox ? "neox" : "norm"},
                                      {"freq_base", c.rope_freq_base},
                                      {"freq_scale", c.rope_freq_scale},
                                      {"dimensions", c.n_rot}};
    }
    mem = infer::EstimateMemory(g, c, f.ctx);
    j["memory"] = {{"context", f.ctx != 0 ? f.ctx : c.n_ctx_train},
                   {"weights_bytes", mem->weights},
                   {"kv_cache_bytes", mem->kv_cache},
                   {"compute_bytes", mem->compute},
                   {"total_bytes", mem->total()}};
    if (absl::Status s = infer::CheckModelTensors(g, c); !s.ok()) runnable = Msg(s);
  }
  j["runnable"] = runnable == "yes";
  if (runnable != "yes") j["not_runnable_reason"] = runnable;

  if (f.keys) {
    for (const infer::GgufKeyValue& kv : g.metadata()) {
      j["metadata"][std::string(kv.key)] = {{"type", infer::GgufTypeName(kv.value.type())},
                                            {"value", kv.value.ToString(200)}};
    }
  }
  if (f.tensors) {
    for (const infer::GgufTensor& t : g.tensors()) {
      j["tensors"].push_back({{"name", std::string(t.name)},
                              {"type", infer::TensorTypeName(t.type)},
                              {"shape", std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims)},
                              {"offset", t.offset},
                              {"bytes", t.size}});
    }
  }
  if (f.json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }

  auto row = [](std::string_view label, const std::string& value) { fmt::print("{:<15}{}\n", label, value); };
  row("file", fmt::format("{} ({}, GGUF v{}, {} tensors, {} metadata keys)", f.file, HumanBytes(g.file_size()),
                          g.version(), g.tensors().size(), g.metadata().size()));
  row("architecture", j.contains("name") ? fmt::format("{} ({})", arch, j["name"].get<std::string>()) : arch);
  row("parameters", fmt::format("{} ({})", HumanCount(static_cast<double>(params)), Thousands(params)));
  if (config.ok()) {
    const infer::ModelConfig& c = *config;
    row("context", fmt::format("{} tokens (training)", c.n_ctx_train));
    row("shape", fmt::format("embd {}, layers {}, heads {} (kv {}, size {}), ffn {}, vocab {}", c.n_embd, c.n_layer,
                             c.n_head, c.n_head_kv, c.head_dim, c.n_ff, c.n_vocab));
    if (c.is_encoder()) {
      row("encoder", fmt::format("LayerNorm eps {}, pooling {}, {} token types", c.norm_eps,
                                 infer::PoolingName(c.pooling), c.n_token_types));
    } else {
      row("rope", fmt::format("{}, base {}, {} dims{}", c.rope_type == infer::RopeType::kNeox ? "neox" : "normal",
                              c.rope_freq_base, c.n_rot,
                              c.rope_freq_scale != 1.0f ? fmt::format(", scale {}", c.rope_freq_scale) : ""));
      row("norm", fmt::format("RMSNorm eps {}{}{}", c.norm_eps, c.tied_embeddings ? ", tied embeddings" : "",
                              c.qkv_bias ? ", QKV bias" : ""));
    }
  }
  std::string type_list;
  for (const auto& [name, c] : types) {
    type_list += fmt::format("{}{}: {} ({})", type_list.empty() ? "" : ", ", name, c.tensors, HumanBytes(c.bytes));
  }
  row("tensor types", type_list.empty() ? "(no tensors)" : type_list);
  if (tok_model.empty()) {
    row("tokenizer", "(none)");
  } else {
    std::string ids;
    for (const char* id : {"bos", "eos", "unknown", "cls", "seperator"}) {
      const std::string k = std::string(id) + "_id";
      if (tok.contains(k)) ids += fmt::format("{}{} {}", ids.empty() ? "" : ", ", id, tok[k].get<uint32_t>());
    }
    row("tokenizer", fmt::format("{}{}, {} tokens{}", tok_model,
                                 tok.contains("pre") ? " (" + tok["pre"].get<std::string>() + ")" : "", n_tokens,
                                 ids.empty() ? "" : " (" + ids + ")"));
  }
  if (chat_template.empty()) {
    row("chat template", "(none)");
  } else {
    const std::vector<std::string> lines = FirstLines(chat_template, 3);
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string line = lines[i].size() > 100 ? lines[i].substr(0, 100) + "..." : lines[i];
      row(i == 0 ? "chat template" : "", line);
    }
    const size_t total_lines = static_cast<size_t>(std::count(chat_template.begin(), chat_template.end(), '\n')) + 1;
    if (total_lines > lines.size()) row("", fmt::format("({} more lines)", total_lines - lines.size()));
  }
  if (mem) {
    row("memory", fmt::format("{} = weights {} + KV cache {} ({} tokens, f16) + compute {}", HumanBytes(mem->total()),
                              HumanBytes(mem->weights), HumanBytes(mem->kv_cache),
                              j["memory"]["context"].get<uint32_t>(), HumanBytes(mem->compute)));
  }
  row("runs in cairn", runnable == "yes" ? "yes" : "no: " + runnable);
  if (f.keys) {
    fmt::print("\nmetadata:\n");
    for (const infer::GgufKeyValue& kv : g.metadata()) {
      fmt::print("  {:<45} {:<7} {}\n", kv.key, infer::GgufTypeName(kv.value.type()), kv.value.ToString(80));
    }
  }
  if (f.tensors) {
    fmt::print("\ntensors:\n");
    for (const infer::GgufTensor& t : g.tensors()) {
      fmt::print("  {:<36} {:<6} {:<20} {}\n", t.name, infer::TensorTypeName(t.type), t.ShapeString(),
                 HumanBytes(t.size));
    }
  }
  return 0;
}

// ------------------------------------------------------------------------- synth

struct SynthFlags {
  std::string arch;
  std::string preset = "tiny";
  std::string type = "f16";
  std::string vocab_from;
  std::string out;
  std::string name;
  uint64_t seed = 1;
  std::optional<uint32_t> n_vocab, n_ctx, n_embd, n_ff, n_layer, n_head, n_head_kv;
  std::optional<float> rope_base, norm_eps;
  std::string pooling;
  std::optional<bool> tied;
  bool quiet = false;
};

int RunSynth(const SynthFlags& f) {
  auto preset = infer::SynthPreset(f.preset);
  if (!preset.ok()) {
    fmt::print(stderr, "cairn model synth: --preset: {}\n", Msg(preset.status()));
    return 2;
  }
  infer::SynthOptions o;
  o.arch = preset->arch;
  if (!f.arch.empty()) {
    auto arch = infer::ParseArch(f.arch);
    if (!arch.ok()) {
      fmt::print(stderr, "cairn model synth: --arch: {}\n", Msg(arch.status()));
      return 2;
    }
    o.arch = *arch;
  }
  o.shape = infer::SynthShapeForArch(*preset, o.arch);
  infer::SynthShape& s = o.shape;
  if (f.n_vocab) s.n_vocab = *f.n_vocab;
  if (f.n_ctx) s.n_ctx = *f.n_ctx;
  if (f.n_embd) s.n_embd = *f.n_embd;
  if (f.n_ff) s.n_ff = *f.n_ff;
  if (f.n_layer) s.n_layer = *f.n_layer;
  if (f.n_head) {
    s.n_head = *f.n_head;
    if (!f.n_head_kv && (o.arch == infer::Arch::kBert || s.n_head % s.n_head_kv != 0)) s.n_head_kv = s.n_head;
  }
  if (f.n_head_kv) s.n_head_kv = *f.n_head_kv;
  if (f.rope_base) s.rope_freq_base = *f.rope_base;
  if (f.norm_eps) s.norm_eps = *f.norm_eps;
  if (f.tied) s.tied_embeddings = *f.tied;
  if (!f.pooling.empty()) {
    const std::map<std::string, infer::Pooling> poolings = {
        {"none", infer::Pooling::kNone}, {"mean", infer::Pooling::kMean}, {"cls", infer::Pooling::kCls},
        {"last", infer::Pooling::kLast}};
    auto it = poolings.find(f.pooling);
    if (it == poolings.end()) {
      fmt::print(stderr, "cairn model synth: --pooling: '{}' is not none, mean, cls or last\n", f.pooling);
      return 2;
    }
    s.pooling = it->second;
  }
  o.weight_type = f.type;
  o.seed = f.seed;
  o.vocab_from = f.vocab_from;
  o.name = f.name.empty() ? fmt::format("cairn-synth {} {} {}", f.preset, infer::ArchName(o.arch), f.type) : f.name;

  if (absl::Status st = infer::CheckSynthOptions(o); !st.ok()) {
    fmt::print(stderr, "cairn model synth: {}\n", Msg(st));
    return 2;
  }
  constexpr uint64_t kProgressAbove = 64ull << 20;
  int last_percent = -1;
  const auto start = std::chrono::steady_clock::now();
  if (!f.quiet) {
    // On a terminal one line is rewritten in place; otherwise a line every 10 %.
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    o.progress = [&last_percent, tty](uint64_t done, uint64_t total) {
      if (total < kProgressAbove) return;
      const int percent = static_cast<int>(done * 100 / total);
      const int step = tty ? 1 : 10;
      if (percent / step == last_percent / step && done != total) return;
      last_percent = percent;
      fmt::print(stderr, "{}cairn model synth: {:3d}% ({} of {}){}", tty ? "\r" : "", percent,
                 HumanBytes(static_cast<double>(done)), HumanBytes(static_cast<double>(total)),
                 tty && done != total ? "" : "\n");
      std::fflush(stderr);
    };
  }
  absl::Status st = infer::SynthesizeModel(o, f.out);
  if (!st.ok()) {
    if (last_percent >= 0 && ::isatty(STDERR_FILENO)) fmt::print(stderr, "\n");
    fmt::print(stderr, "cairn model synth: {}\n", Msg(st));
    return 1;
  }
  auto written = GgufFile::Open(f.out);
  if (!written.ok()) {
    fmt::print(stderr, "cairn model synth: the written file does not read back: {}\n", Msg(written.status()));
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t params = infer::ParameterCount(**written);
  fmt::print("wrote {}: {} {} ({} parameters, {}, {} layers, embd {}, vocab {}) in {:.1f} s\n", f.out,
             infer::ArchName(o.arch), f.type, HumanCount(static_cast<double>(params)),
             HumanBytes(static_cast<double>((*written)->file_size())), s.n_layer, s.n_embd,
             (*written)->GetArraySize("tokenizer.ggml.tokens").value_or(0), seconds);
  return 0;
}

}  // namespace

void RegisterModel(CLI::App& app, Runner* run) {
  CLI::App* m = app.add_subcommand("model", "Model files: inspect a GGUF file, synthesize one with random weights");
  m->require_subcommand(1);

  auto inf = std::make_shared<InspectFlags>();
  CLI::App* i = m->add_subcommand("inspect", "Architecture, size, tensor types, tokenizer and memory of a GGUF file");
  i->add_option("file", inf->file, "A .gguf model file")->required();
  i->add_flag("--json", inf->json, "Print one JSON object instead of a table");
  i->add_flag("--keys", inf->keys, "Also list every metadata key");
  i->add_flag("--tensors", inf->tensors, "Also list every tensor");
  i->add_option("--ctx", inf->ctx, "Context length for the memory estimate (default: the model's)");
  i->callback([=] { *run = [=] { return RunInspect(*inf); }; });

  auto sf = std::make_shared<SynthFlags>();
  CLI::App* s = m->add_subcommand("synth", "Write a GGUF model with random weights (loads in cairn and llama.cpp)");
  std::string presets, types;
  for (const std::string& p : infer::SynthPresetNames()) presets += (presets.empty() ? "" : ", ") + p;
  for (const std::string& t : infer::SynthWeightTypeNames()) types += (types.empty() ? "" : ", ") + t;
  s->add_option("-o,--out", sf->out, "Output .gguf file")->required();
  s->add_option("--arch", sf->arch, "llama, qwen2 or bert (default: the preset's)");
  s->add_option("--preset", sf->preset, "Shape: " + presets)->capture_default_str();
  s->add_option("--type", sf->type, "Weight type: " + types)->capture_default_str();
  s->add_option("--vocab-from", sf->vocab_from,
                "Copy the tokenizer (tokenizer.* keys, chat template) from this GGUF file; the vocabulary size "
                "becomes its token count");
  s->add_option("--seed", sf->seed, "Random seed (same seed, same weights in every type)")->capture_default_str();
  s->add_option("--name", sf->name, "general.name");
  s->add_option("--n-vocab", sf->n_vocab, "Vocabulary size");
  s->add_option("--n-ctx", sf->n_ctx, "Training context length");
  s->add_option("--n-embd", sf->n_embd, "Embedding width");
  s->add_option("--n-ff", sf->n_ff, "Feed-forward width");
  s->add_option("--n-layer", sf->n_layer, "Number of layers");
  s->add_option("--n-head", sf->n_head, "Attention heads");
  s->add_option("--n-head-kv", sf->n_head_kv, "Key/value heads (grouped-query attention)");
  s->add_option("--rope-base", sf->rope_base, "RoPE frequency base");
  s->add_option("--norm-eps", sf->norm_eps, "Norm epsilon");
  s->add_option("--pooling", sf->pooling, "bert pooling: none, mean, cls or last");
  s->add_option("--tied", sf->tied, "Tie the output matrix to the token embedding (true/false)");
  s->add_flag("--quiet", sf->quiet, "No progress on stderr");
  s->callback([=] { *run = [=] { return RunSynth(*sf); }; });
}

}  // namespace cairn::cli
