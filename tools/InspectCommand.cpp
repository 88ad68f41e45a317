// tools/InspectCommand.cpp - `graphc inspect FILE.t7`: what a Torch7 file
// holds, as a tree with types, classes and tensor shapes, read by the safe
// reader (runtime/T7.h), so nothing in the file is ever run.
#include "runtime/T7.h"
#include "runtime/T7Print.h"
#include "tools/Cli.h"

#include <cstdio>
#include <memory>

namespace graphc::cli {

namespace {

struct InspectOptions {
  std::string file;
  std::string mode = "auto";
  int values = 6;
};

int runInspect(const InspectOptions &o) {
  runtime::T7Mode mode = o.mode == "binary"  ? runtime::T7Mode::Binary
                         : o.mode == "ascii" ? runtime::T7Mode::Ascii
                                             : runtime::T7Mode::Auto;
  auto file = runtime::readT7(o.file, mode);
  if (!file)
    return report(file.diag());
  runtime::T7PrintOptions print;
  print.values = o.values;
  std::string text = runtime::printT7(*file, print);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

} // namespace

Command inspectCommand(CLI::App &app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App *c = app.add_subcommand(
      "inspect", "Print what a Torch7 .t7 file holds (tables, nn modules, tensor shapes and "
                 "first values), like th -e \"print(torch.load(f))\"; nothing in it is run");
  c->add_option("file", o->file, "A .t7 file written by torch.save (binary or ascii)")->required();
  c->add_option("--mode", o->mode, "binary, ascii, or auto: told apart by the first byte")
      ->check(CLI::IsMember({"auto", "binary", "ascii"}));
  c->add_option("--values", o->values, "Elements shown per tensor or storage (0: none)")
      ->check(CLI::Range(0, 1000000));
  return {c, [o] { return runInspect(*o); }};
}

} // namespace graphc::cli
