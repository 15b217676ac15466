// cairn/cli/commands.h — how subcommands plug into the `cairn` binary.
//
// Each subcommand file defines one Register* function. It adds its CLI11
// subcommand to `app` and, when that subcommand is chosen, stores in *run the
// function main() calls after parsing. A runner returns the process exit code:
// 0 on success, 1 when the work failed (after printing a one-line reason to
// stderr), 2 for bad usage.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

namespace cairn::cli {

using Runner = std::function<int()>;

void RegisterDemo(CLI::App& app, Runner* run);
void RegisterServe(CLI::App& app, Runner* run);  // serve_cmd.cc
void RegisterSketch(CLI::App& app, Runner* run);
void RegisterBench(CLI::App& app, Runner* run);
void RegisterRun(CLI::App& app, Runner* run);
void RegisterEval(CLI::App& app, Runner* run);
void RegisterDetect(CLI::App& app, Runner* run);
void RegisterVector(CLI::App& app, Runner* run);
void RegisterModel(CLI::App& app, Runner* run);  // model_cmd.cc: inspect, synth
void RegisterTokenize(CLI::App& app, Runner* run);  // tokenize_cmd.cc
void RegisterGenerate(CLI::App& app, Runner* run);  // generate_cmd.cc
void RegisterChat(CLI::App& app, Runner* run);      // chat_cmd.cc
void RegisterEmbed(CLI::App& app, Runner* run);     // embed_cmd.cc
// memory_cmd.cc: `cairn memory add|recall|facts|consolidate`, and `cairn eval locomo` (call after RegisterEval).
void RegisterMemory(CLI::App& app, Runner* run);
void RegisterAsk(CLI::App& app, Runner* run);       // ask_cmd.cc
// `cairn vector bench`, also reachable as `cairn bench vector`: adds it under `parent`.
void AddVectorBench(CLI::App* parent, const std::string& name, Runner* run);
// `cairn bench infer` (bench_infer_cmd.cc): adds it under `parent`.
void AddInferBench(CLI::App* parent, Runner* run);
// `cairn bench serve` (bench_serve_cmd.cc): adds it under `parent`.
void AddServeBench(CLI::App* parent, Runner* run);
// `cairn bench memory` (bench_memory_cmd.cc): adds it under `parent`.
void AddMemoryBench(CLI::App* parent, Runner* run);
// Prints `table` (or `j` when `json`) and writes `j` to `json_out` when it is set; the exit
// code of a bench command (bench_cmd.cc).
int EmitBenchResults(bool json, const std::string& json_out, const nlohmann::json& j, const std::string& table);
// The --json and --json-out flags of every command that prints a table or its JSON object
// (EmitBenchResults), with the same words everywhere (bench_cmd.cc).
void AddJsonFlags(CLI::App* cmd, bool* json, std::string* json_out);

}  // namespace cairn::cli
