// tools/graphc.cpp - the command line: `graphc compile`, `graphc train`,
// `graphc eval`, `graphc inspect`, `graphc import`, `graphc export`
// (tools/CompileCommand.cpp, tools/TrainCommand.cpp, tools/InspectCommand.cpp,
// tools/T7Commands.cpp).
#include "tools/Cli.h"

#include <cstdio>
#include <new>
#include <string>

int main(int argc, char **argv) {
  CLI::App app{"graphc - compiles Torch7-style nn.Sequential models, their loss "
               "and optimizer into fused training code (LLVM for the CPU, CUDA)"};
  app.require_subcommand(1);

  std::vector<graphc::cli::Command> commands{
      graphc::cli::compileCommand(app), graphc::cli::trainCommand(app),
      graphc::cli::evalCommand(app), graphc::cli::inspectCommand(app),
      graphc::cli::importCommand(app), graphc::cli::exportCommand(app)};
  const char *scriptArgsHelp =
      "Words after `--` are the model script's own command line (its global `arg`, as "
      "`th script.lua ...` gives it): graphc train model.lua -- -lr 0.1 -model vgg";
  // The commands that run a model script (export only with --model).
  auto runsScript = [](const std::string &name) {
    return name == "train" || name == "eval" || name == "compile" || name == "export";
  };
  app.footer(scriptArgsHelp);
  for (auto &c : commands)
    if (runsScript(c.app->get_name()))
      c.app->footer(scriptArgsHelp);
  // `graphc train model.lua -- -lr 0.1`: what follows `--` is the script's
  // own command line, never graphc's.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      graphc::cli::scriptArgs().assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    // A first word that names no command is a mistyped one, not a missing one.
    if (argc > 1 && argv[1][0] != '-') {
      std::string names;
      bool known = false;
      for (const auto &c : commands) {
        names += (names.empty() ? "" : ", ") + c.app->get_name();
        known = known || c.app->get_name() == argv[1];
      }
      if (!known) {
        std::fprintf(stderr, "error: unknown command '%s' (the commands: %s; see graphc --help)\n",
                     argv[1], names.c_str());
        return 1;
      }
    }
    // --help and --version are not errors; everything else exits with 1.
    return app.exit(e) == 0 ? 0 : 1;
  }
  for (auto &c : commands)
    if (c.app->parsed()) {
      std::string name = c.app->get_name();
      if (!graphc::cli::scriptArgs().empty() && !runsScript(name)) {
        std::fprintf(stderr,
                     "error: the words after `--` are a model script's command line; graphc "
                     "%s runs no model script\n",
                     name.c_str());
        return 1;
      }
      try {
        return c.run();
      } catch (const std::bad_alloc &) {
        // What the memory estimate did not foresee (the compiler's own
        // structures, a machine that ran short meanwhile): a clear error.
        return graphc::cli::report(graphc::error(
            "out of memory: graphc could not allocate what this model needs; `graphc compile "
            "MODEL --stats` shows the estimate (use a smaller model or batch)"));
      }
    }
  return 0;
}
