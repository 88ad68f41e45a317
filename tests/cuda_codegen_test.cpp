// tests/cuda_codegen_test.cpp - every generated CUDA kernel of every example
// model compiles with NVRTC and assembles with ptxas for sm_90, on a machine
// with the CUDA toolkit and no GPU.
#include "TestUtil.h"
#include "frontend/ModelFile.h"
#include "runtime/Build.h"

#include <catch2/catch.hpp>

#ifdef GRAPHC_HAVE_CUDA
#include "codegen/cuda/CudaSource.h"
#include "codegen/cuda/Nvrtc.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace graphc;
namespace fs = std::filesystem;

namespace {

/// Compiles every kernel of both programs of `spec`; returns how many.
int compileAll(const nn::ModelSpec &spec, const ir::Shape &sample, const fs::path &dir) {
  auto m = runtime::compileModel(spec, sample);
  INFO((m ? "" : m.diag().str()));
  REQUIRE(bool(m));
  int count = 0;
  for (const ir::Graph *g : {&m->step, &m->predict}) {
    auto kernels = codegen::cuda::printKernels(*g, codegen::storedValues(*g), "t_");
    for (const auto &k : kernels) {
      if (k.source.empty())
        continue;
      std::string name = k.name.empty() ? k.colsum : k.name;
      auto ptx = codegen::cuda::compileToPtx(k.source, name, "sm_90");
      INFO(k.source << "\n" << (ptx ? "" : ptx.diag().message));
      REQUIRE(bool(ptx));
      fs::path file = dir / (name + ".ptx");
      std::ofstream(file) << *ptx;
      std::string cmd = std::string(GRAPHC_PTXAS) + " -arch=sm_90 " + file.string() + " -o " +
                        (dir / (name + ".cubin")).string() + " 2>&1";
      CHECK(std::system(cmd.c_str()) == 0);
      ++count;
    }
  }
  return count;
}

} // namespace

TEST_CASE("every CUDA kernel of the example models compiles and assembles for sm_90",
          "[cuda]") {
  fs::path dir = fs::temp_directory_path() / ("graphc_cuda_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char *file : {"mlp.model", "lenet.model"}) {
    INFO(file);
    auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/" + file);
    REQUIRE(bool(spec));
    CHECK(compileAll(*spec, spec->input ? *spec->input : ir::Shape{1, 32, 32}, dir) > 5);
  }
  // Every layer, criterion and optimizer kind, Dropout included.
  nn::ModelSpec all;
  all.model.add(nn::SpatialConvolution(1, 3, 3, 3, 2, 2, 1))
      .add(nn::Tanh())
      .add(nn::SpatialMaxPooling(3, 3, 2, 2, 1, 1))
      .add(nn::Reshape({3 * 8 * 8}))
      .add(nn::Dropout(0.3))
      .add(nn::Linear(192, 20))
      .add(nn::Sigmoid())
      .add(nn::Linear(20, 10))
      .add(nn::SoftMax());
  for (auto crit : {nn::CriterionKind::MSE, nn::CriterionKind::CrossEntropy}) {
    all.criterion = nn::Criterion{crit, {}};
    all.optimizer = nn::Optimizer{crit == nn::CriterionKind::MSE ? "adam" : "sgd",
                                  {{"momentum", 0.9}}, {}};
    if (crit == nn::CriterionKind::MSE)
      all.optimizer->config.clear();
    CHECK(compileAll(all, {1, 32, 32}, dir) > 5);
  }
  fs::remove_all(dir);
}

#else

TEST_CASE("every CUDA kernel compiles for sm_90", "[cuda]") {
  WARN("skipped: this graphc was built without the CUDA toolkit");
}

#endif
