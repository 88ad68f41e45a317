// driver/Targets.h - the one table of targets: what each is called, how it
// makes an executable, whether it writes a library, what it can do.
//
// The command line's --target lists, the trainer's choices and the driver's
// dispatch all read this table; a new backend is one row here, a device
// runtime (runtime/NAME) and a printer (codegen/NAME).
#pragma once

#include "driver/EmitLibrary.h"

#include <functional>
#include <string>
#include <vector>

namespace graphc::driver {

struct Target {
  std::string name;        ///< as --target spells it
  std::string description; ///< one line for --help
  /// The executable; empty where this graphc was built without the target.
  std::function<Expected<std::unique_ptr<runtime::Executable>>(runtime::CompiledModel,
                                                               const runtime::ExecutableOptions &)>
      makeExecutable;
  /// The library `graphc compile` writes; empty where the target has none.
  std::function<Status(const runtime::CompiledModel &, const BuildOptions &, const std::string &out,
                       LibraryReport *)>
      writeLibrary;
  std::string missing;  ///< why makeExecutable is empty, for the error
  bool library = false; ///< `graphc compile` writes a library for it (when built in)
};

/// Every target, in the order --help lists them: cpu, cuda, interp.
const std::vector<Target> &targets();
/// The default --target: cpu, or in a graphc built without it the first
/// target that is built in (cuda, else interp).
std::string defaultTarget();
/// The target called `name`, or null.
const Target *findTarget(const std::string &name);
/// Their names; with `libraries` only those that write a library.
std::vector<std::string> targetNames(bool libraries = false);
/// "cpu (LLVM JIT), cuda (...) or interp (...)": for --target's help.
std::string describeTargets(bool libraries = false);

} // namespace graphc::driver
