#include "cairn/cli/commands.h"
namespace cairn::cli {
void RegisterDemo(CLI::App& app, Runner* run) { app.add_subcommand("demo", "Run the flagship showcase on bundled data")->callback([run]{ *run = []{ return 0; }; }); }
void RegisterSketch(CLI::App& app, Runner*) { app.add_subcommand("sketch", "Sketch tools"); }
void RegisterBench(CLI::App& app, Runner*) { app.add_subcommand("bench", "Benchmarks"); }
}
