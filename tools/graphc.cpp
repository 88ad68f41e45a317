// tools/graphc.cpp - the command line: `graphc compile`, `graphc train`,
// `graphc eval` (tools/CompileCommand.cpp, tools/TrainCommand.cpp).
#include "tools/Cli.h"

int main(int argc, char **argv) {
  CLI::App app{"graphc - compiles Torch7-style nn.Sequential models, their loss "
               "and optimizer into fused training code (LLVM for the CPU, CUDA)"};
  app.require_subcommand(1);
  std::vector<graphc::cli::Command> commands{graphc::cli::compileCommand(app),
                                             graphc::cli::trainCommand(app),
                                             graphc::cli::evalCommand(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    // --help and --version are not errors; everything else exits with 1.
    return app.exit(e) == 0 ? 0 : 1;
  }
  for (auto &c : commands)
    if (c.app->parsed())
      return c.run();
  return 0;
}
