// tools/Cli.h - what graphc's subcommands share: reporting user errors,
// reading shapes and model files, common flags, and the command registry.
//
// Every user error arrives at the command line as a Diag and is printed as
// one `file:line:col: error: message` line on stderr with exit code 1.
#pragma once

#include "frontend/nn.h"
#include "ir/Error.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace graphc::cli {

/// A subcommand and what runs it once the command line is parsed.
struct Command {
  CLI::App *app;
  std::function<int()> run;
};

Command compileCommand(CLI::App &app);
Command trainCommand(CLI::App &app);
Command evalCommand(CLI::App &app);
Command inspectCommand(CLI::App &app);
Command importCommand(CLI::App &app);
Command exportCommand(CLI::App &app);

/// The words after `--` on graphc's command line: the model script's own
/// command line (its global `arg`, for torch.CmdLine and lapp).
std::vector<std::string> &scriptArgs();
/// Loads a model file with scriptArgs() as its command line.
Expected<nn::ModelSpec> loadModelFile(const std::string &path);

/// Prints `d` as one error line on stderr; returns the exit code 1.
int report(const Diag &d);
/// "1x32x32" -> {1, 32, 32}.
Expected<ir::Shape> parseShape(const std::string &text);
/// The criterion and optimizer from the command line, for a script that
/// has none or to replace the script's: --criterion, --optim, --lr and
/// --optim-config.
struct TrainingFlags {
  std::string criterion, optim, optimConfig;
  double lr = 0; ///< 0: not given
};
void addTrainingFlags(CLI::App *c, TrainingFlags &flags);
/// Loads the model file, applies `flags`, and checks that it defines a full
/// training setup.
Expected<nn::ModelSpec> loadTrainingSpec(const std::string &path, const TrainingFlags &flags = {});
/// The per-sample input shape: the flag, else the model file's `input`,
/// else what the first layer fixes (nn::inferSampleShape).
Expected<ir::Shape> sampleShape(const nn::ModelSpec &spec, const std::string &flag);
/// Accepts a seed: a decimal integer from 0 to 2^64 - 1, nothing that
/// would wrap around (-1, 2^64).
CLI::Validator seedValidator();
/// "8G", "512M", "1.5GiB", "100000": a size in bytes (K, M, G, T are powers
/// of 1024; a trailing "B" or "iB" is optional).
Expected<uint64_t> parseBytes(const std::string &text);
/// `--max-memory SIZE` into `value` (parsed later with parseBytes).
void addMaxMemoryOption(CLI::App &command, std::string &value);
/// `--verify-plan`: check every memory plan (passes/PlanCheck.h), as debug
/// builds and tests always do.
void addVerifyPlanFlag(CLI::App &command);

} // namespace graphc::cli
