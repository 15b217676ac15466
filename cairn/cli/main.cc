// The `cairn` command: one binary, subcommands for every tool a user reaches for.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "cairn/base/log.h"
#include "cairn/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"cairn — edge-intelligence engine: streams, sketches, vectors, memory, small LMs",
               "cairn"};
  app.set_version_flag("--version", std::string("cairn ") + CAIRN_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.failure_message([](const CLI::App* failed, const CLI::Error& e) {
    std::string where = failed->get_parent() ? failed->get_name() + ": " : "";
    return "cairn: " + where + e.what() + " (run with --help for usage)\n";
  });

  cairn::cli::Runner run;
  cairn::cli::RegisterDemo(app, &run);
  cairn::cli::RegisterServe(app, &run);
  cairn::cli::RegisterSketch(app, &run);
  cairn::cli::RegisterBench(app, &run);
  cairn::cli::RegisterRun(app, &run);
  cairn::cli::RegisterEval(app, &run);
  cairn::cli::RegisterDetect(app, &run);
  cairn::cli::RegisterVector(app, &run);
  cairn::cli::RegisterModel(app, &run);
  cairn::cli::RegisterTokenize(app, &run);
  cairn::cli::RegisterGenerate(app, &run);
  cairn::cli::RegisterChat(app, &run);
  cairn::cli::RegisterEmbed(app, &run);
  cairn::cli::RegisterAsk(app, &run);
  cairn::cli::RegisterMemory(app, &run);  // after RegisterEval: adds `eval locomo`

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  auto level = cairn::ParseLogLevel(log_level);
  if (!level.ok()) {
    std::fprintf(stderr, "cairn: %s\n", std::string(level.status().message()).c_str());
    return 2;
  }
  cairn::InitLogging(*level);
  if (!run) return 0;
  return run();
}
