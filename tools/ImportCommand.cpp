// tools/ImportCommand.cpp - `graphc import model.t7 -o DIR/NAME`: a trained
// Torch7 network as a graphc model file and its weights (driver/ImportT7.h).
#include "driver/ImportT7.h"
#include "frontend/Trace.h"
#include "runtime/Checkpoint.h"
#include "tools/Cli.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace graphc::cli {

namespace {

struct ImportOptions {
  std::string file, out;
  bool force = false;
};

int runImport(const ImportOptions &o) {
  auto imported = driver::importT7(o.file);
  if (!imported)
    return report(imported.diag());
  std::string modelPath = o.out + ".model", weightsPath = o.out + ".safetensors";
  std::error_code ec;
  for (const std::string &p : {modelPath, weightsPath})
    if (!o.force && std::filesystem::exists(p, ec)) {
      Diag d = error("exists; graphc import replaces nothing (pass --force to replace it)");
      d.file = p;
      return report(d);
    }
  std::filesystem::path dir = std::filesystem::path(o.out).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec) &&
      !std::filesystem::create_directories(dir, ec)) {
    Diag d = error(fmt::format("cannot create the folder: {}", ec.message()));
    d.file = dir.string();
    return report(d);
  }
  auto layout = frontend::paramLayout(imported->spec.model);
  if (!layout)
    return report(layout.diag());
  std::vector<runtime::TensorRef> tensors;
  for (const ir::ParamInfo &p : *layout)
    tensors.push_back({p.name, "F32", p.shape, imported->params.data() + p.offset,
                       size_t(p.numel()) * sizeof(float)});
  std::string name = std::filesystem::path(o.out).filename().string();
  if (Status s = runtime::writeSafetensors(weightsPath, tensors,
                                           {{"graphc.model", name}, {"graphc.imported", o.file}});
      !s)
    return report(s.diag());
  const std::string &text = imported->modelFile;
  if (Status s = runtime::writeFileAtomic(modelPath, text.data(), text.size()); !s)
    return report(s.diag());
  std::printf("%s: %zu layers, %zu parameters -> %s, %s\n", o.file.c_str(),
              imported->spec.model.children.size(), imported->params.size(), modelPath.c_str(),
              weightsPath.c_str());
  return 0;
}

} // namespace

Command importCommand(CLI::App &app) {
  auto o = std::make_shared<ImportOptions>();
  CLI::App *c = app.add_subcommand(
      "import", "Bring a trained Torch7 network (torch.save of an nn.Sequential, .t7) into "
                "graphc: writes NAME.model, a model file that rebuilds it, and "
                "NAME.safetensors, its weights under PyTorch's names; nothing in the file is run");
  c->add_option("file", o->file, "the .t7 file (binary or ascii; CudaTensor weights are read too)")
      ->required();
  c->add_option("-o,--output", o->out, "DIR/NAME: where the two files go")->required();
  c->add_flag("--force", o->force, "replace NAME.model and NAME.safetensors if they exist");
  return {c, [o] { return runImport(*o); }};
}

} // namespace graphc::cli
