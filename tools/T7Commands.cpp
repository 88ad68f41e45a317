// tools/ImportCommand.cpp - `graphc import model.t7 -o DIR/NAME`: a trained
// Torch7 network as a graphc model file and its weights (driver/T7Models.h).
#include "driver/T7Models.h"
#include "frontend/ModelFile.h"
#include "frontend/Trace.h"
#include "runtime/Checkpoint.h"
#include "tools/Cli.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace graphc::cli {

namespace {

struct ImportOptions {
  std::string file, out;
  bool force = false;
};

struct ExportOptions {
  std::string checkpoint, out, model, mode = "binary";
  bool force = false;
};

/// Refuses to replace a file the user has, unless --force.
Status checkFresh(const std::string &path, bool force, const char *command) {
  std::error_code ec;
  if (force || !std::filesystem::exists(path, ec))
    return {};
  Diag d = error(fmt::format("exists; graphc {} replaces nothing (pass --force to replace it)",
                             command));
  d.file = path;
  return d;
}

int runExport(const ExportOptions &o) {
  if (Status s = checkFresh(o.out, o.force, "export"); !s)
    return report(s.diag());
  auto ck = runtime::readSafetensors(o.checkpoint);
  if (!ck)
    return report(ck.diag());
  // The network: --model, or what graphc train wrote into the checkpoint.
  Expected<nn::ModelSpec> spec = error("no network");
  if (!o.model.empty()) {
    spec = loadModelFile(o.model);
  } else {
    auto it = ck->metadata.find("graphc.network");
    if (it == ck->metadata.end()) {
      Diag d = error("the checkpoint does not say its network (a PyTorch state_dict, or one "
                     "written before graphc kept it): name the model file with --model");
      d.file = o.checkpoint;
      return report(d);
    }
    spec = frontend::parseModel(it->second, o.checkpoint + " (graphc.network)");
  }
  if (!spec)
    return report(spec.diag());
  auto layout = frontend::paramLayout(spec->model);
  if (!layout)
    return report(layout.diag());
  std::vector<float> params;
  for (const ir::ParamInfo &p : *layout) {
    auto it = ck->tensors.find(p.name);
    if (it == ck->tensors.end() || it->second.dtype != "F32" || it->second.shape != p.shape) {
      Diag d = error(fmt::format("tensor '{}' {} (the network wants F32 {})", p.name,
                                 it == ck->tensors.end()
                                     ? std::string("is missing")
                                     : fmt::format("is {} {}", it->second.dtype,
                                                   ir::str(it->second.shape)),
                                 ir::str(p.shape)));
      d.file = o.checkpoint;
      return report(d);
    }
    params.resize(size_t(p.offset + p.numel()));
    std::memcpy(params.data() + p.offset, ck->bytes(it->second), size_t(p.numel()) * 4);
  }
  bool ascii = o.mode == "ascii";
  auto bytes = driver::exportT7(spec->model, params,
                                ascii ? runtime::T7Mode::Ascii : runtime::T7Mode::Binary);
  if (!bytes)
    return report(bytes.diag());
  if (Status s = runtime::writeFileAtomic(o.out, bytes->data(), bytes->size()); !s)
    return report(s.diag());
  std::printf("%s: %zu parameters -> %s (%s reads it; %s, FloatTensor weights)\n",
              o.checkpoint.c_str(), params.size(), o.out.c_str(),
              ascii ? "torch.load(path, 'ascii')" : "torch.load", ascii ? "ascii" : "binary");
  return 0;
}

int runImport(const ImportOptions &o) {
  auto imported = driver::importT7(o.file);
  if (!imported)
    return report(imported.diag());
  std::string modelPath = o.out + ".model", weightsPath = o.out + ".safetensors";
  std::error_code ec;
  for (const std::string &p : {modelPath, weightsPath})
    if (Status s = checkFresh(p, o.force, "import"); !s)
      return report(s.diag());
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

Command exportCommand(CLI::App &app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App *c = app.add_subcommand(
      "export", "Write a graphc checkpoint as a Torch7 network (.t7) that torch.load reads: an "
                "nn.Sequential with FloatTensor weights and the fields Torch7's modules need");
  c->add_option("checkpoint", o->checkpoint,
                "a safetensors checkpoint from graphc train --save (it names its network)")
      ->required();
  c->add_option("-o,--output", o->out, "the .t7 file to write")->required();
  c->add_option("--model", o->model,
                "the model file, for a checkpoint that does not name its network (a PyTorch "
                "state_dict)");
  c->add_option("--mode", o->mode,
                "binary (torch.save's default) or ascii (torch.save(f, net, 'ascii'): text, "
                "portable between machines)")
      ->check(CLI::IsMember({"binary", "ascii"}));
  c->add_flag("--force", o->force, "replace the .t7 file if it exists");
  return {c, [o] { return runExport(*o); }};
}

} // namespace graphc::cli
