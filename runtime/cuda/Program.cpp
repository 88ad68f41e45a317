// runtime/cuda/Program.cpp - compile, bind, launch, capture, replay.
#include "runtime/cuda/Program.h"

#include "codegen/cuda/AotProgram.h"
#include "codegen/cuda/Nvrtc.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>

namespace graphc::runtime::cuda {

using namespace ir;
using codegen::cuda::CudaKernel;
using codegen::cuda::Launch;
using codegen::cuda::LtEpilogue;

namespace {

/// The largest power of two up to 256 that divides `p`.
uint32_t alignment(CUdeviceptr p) {
  uint32_t a = 1;
  while (a < 256 && p % (a * 2) == 0)
    a *= 2;
  return a;
}

} // namespace

/// One cuBLASLt product at one batch size: its descriptors and algorithm.
struct Program::Gemm {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  int64_t m = 0, n = 0, k = 0;
  CUdeviceptr a = 0, b = 0, c = 0, bias = 0;
  /// cuBLASLt cannot take the bias epilogue: graphc_bias_add applies it.
  bool bySelf = false;
  int relu = 0;
  CUfunction biasAdd = nullptr;

  ~Gemm() {
    if (lc)
      cublasLtMatrixLayoutDestroy(lc);
    if (lb)
      cublasLtMatrixLayoutDestroy(lb);
    if (la)
      cublasLtMatrixLayoutDestroy(la);
    if (desc)
      cublasLtMatmulDescDestroy(desc);
  }
};

/// Everything one batch size needs: its products and its CUDA graph.
struct Program::Batch {
  std::vector<std::unique_ptr<Gemm>> gemms; ///< per kernel; null for non-GEMMs
  CUgraphExec exec = nullptr;

  ~Batch() {
    if (exec)
      if (const Driver *d = loadedDriver())
        d->cuGraphExecDestroy(exec);
  }
};

Program::Program(Device &device, Graph graph, ir::MemoryPlan plan, std::string prefix, bool tf32)
    : dev_(device), graph_(std::move(graph)), plan_(std::move(plan)), prefix_(std::move(prefix)),
      tf32_(tf32) {}

Program::~Program() = default;

bool Program::graphsEnabled() {
  const char *e = std::getenv("GRAPHC_CUDA_GRAPHS");
  return !e || std::string(e) != "0";
}

// --- compile ---------------------------------------------------------------------

Status Program::compile() {
  auto start = std::chrono::steady_clock::now();
  kernels_ = codegen::cuda::printKernels(graph_, codegen::storedValues(graph_), prefix_);
  std::vector<size_t> jobs;
  for (size_t i = 0; i < kernels_.size(); ++i)
    if (!kernels_[i].name.empty() || !kernels_[i].colsum.empty())
      jobs.push_back(i);

  // NVRTC compiles independent programs in parallel.
  const std::string arch = dev_.arch();
  std::vector<std::optional<Expected<std::string>>> ptx(jobs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t j; (j = next++) < jobs.size();) {
      const CudaKernel &k = kernels_[jobs[j]];
      ptx[j] = codegen::cuda::compileToPtx(k.source, k.name.empty() ? k.colsum : k.name, arch);
    }
  };
  size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(threads, jobs.size()); ++t)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();

  main_.assign(kernels_.size(), nullptr);
  colsum_.assign(kernels_.size(), nullptr);
  for (size_t j = 0; j < jobs.size(); ++j) {
    const CudaKernel &k = kernels_[jobs[j]];
    if (!*ptx[j])
      return ptx[j]->diag();
    auto module = dev_.loadModule(**ptx[j], k.name.empty() ? k.colsum : k.name);
    if (!module)
      return module.diag();
    for (auto [name, slot] : {std::pair{&k.name, &main_}, std::pair{&k.colsum, &colsum_}}) {
      if (name->empty())
        continue;
      auto f = dev_.function(*module, *name);
      if (!f)
        return f.diag();
      (*slot)[jobs[j]] = *f;
    }
  }
  compileMs_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return {};
}

// --- bind: the CPU run function's steps 1 and 3 (codegen/cpu/StepFunction.cpp) ----

Status Program::bind(const std::map<std::string, CUdeviceptr> &io) {
  const int count = graph_.size();
  auto ioBuffer = [&](const std::string &name) {
    auto it = io.find(name);
    GRAPHC_CHECK(it != io.end() && it->second, "no device buffer for {}", name);
    return it->second;
  };
  if (Status s = arena_.allocate(size_t(std::max<int64_t>(plan_.arenaBytes, 256))); !s)
    return s;
  codegen::cuda::DeviceBinding binding = codegen::cuda::bindValues(graph_, plan_);
  at_.assign(size_t(count), 0);
  for (ValueId v = 0; v < count; ++v) {
    const codegen::cuda::ValueHome &h = binding.at[size_t(v)];
    if (h.kind == codegen::cuda::ValueHome::Arena)
      at_[size_t(v)] = arena_.get() + CUdeviceptr(h.offset);
    else if (h.kind == codegen::cuda::ValueHome::Io)
      at_[size_t(v)] = ioBuffer((h.output ? "out:" : "") + h.io) + CUdeviceptr(h.offset);
  }
  outputCopies_.clear();
  for (auto &[v, name] : binding.outputCopies)
    if (CUdeviceptr dst = ioBuffer("out:" + name); dst != at_[size_t(v)])
      outputCopies_.push_back({v, dst});

  if (Status s = table_.allocate(size_t(std::max(count, 1)) * sizeof(CUdeviceptr)); !s)
    return s;
  const Driver &d = dev_.driver();
  // On the step's stream, then waited for: the kernels that read the table
  // run on that (non-blocking) stream, which a synchronous copy on the
  // legacy stream would not be ordered before.
  if (count > 0) {
    GRAPHC_CU(d, d.cuMemcpyHtoDAsync(table_.get(), at_.data(), size_t(count) * sizeof(CUdeviceptr),
                                     dev_.stream()));
    if (Status s = dev_.synchronize(); !s)
      return s;
  }
  batches_.clear();
  return {};
}

// --- GEMMs -----------------------------------------------------------------------

Expected<std::unique_ptr<Program::Gemm>> Program::planGemm(const CudaKernel &k, int64_t n) {
  const codegen::KernelPlan &p = k.plan;
  const Shape as = concrete(graph_.type(p.a).shape, n), bs = concrete(graph_.type(p.b).shape, n);
  GRAPHC_CHECK(as.size() == 2 && bs.size() == 2, "GEMM k{} of {} by {}", p.group, str(as), str(bs));
  // Row-major C[M, N] = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
  // cuBLASLt's "A" is our B and its "B" is our A; every row-major [R, C]
  // buffer is a column-major C x R matrix with leading dimension C.
  const int64_t m = p.transA ? as[1] : as[0], kk = p.transA ? as[0] : as[1];
  const int64_t nn = p.transB ? bs[0] : bs[1];
  GRAPHC_CHECK((concrete(graph_.type(p.matmul).shape, n) == Shape{m, nn}) &&
                   kk == (p.transB ? bs[1] : bs[0]),
               "GEMM k{}: {} x {} does not give {}", p.group, str(as), str(bs),
               str(graph_.type(p.matmul).shape));
  const CUdeviceptr a = at_[size_t(p.a)], b = at_[size_t(p.b)], c = at_[size_t(p.c)];
  const CUdeviceptr bias = k.bias >= 0 ? at_[size_t(k.bias)] : 0;
  GRAPHC_CHECK(a && b && c && (k.lt == LtEpilogue::None || bias), "GEMM k{} lacks memory", p.group);

  auto attempt = [&](bool withEpilogue,
                     std::unique_ptr<Gemm> &out) -> Status { // out null: no algorithm
    auto gm = std::make_unique<Gemm>();
    gm->m = m, gm->n = nn, gm->k = kk, gm->a = a, gm->b = b, gm->c = c, gm->bias = bias;
    GRAPHC_LT(cublasLtMatmulDescCreate(
        &gm->desc, tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opA = p.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = p.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    GRAPHC_LT(
        cublasLtMatmulDescSetAttribute(gm->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA));
    GRAPHC_LT(
        cublasLtMatmulDescSetAttribute(gm->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB));
    if (withEpilogue) {
      cublasLtEpilogue_t epi =
          k.lt == LtEpilogue::ReluBias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
      const void *biasPtr = reinterpret_cast<const void *>(bias);
      GRAPHC_LT(cublasLtMatmulDescSetAttribute(gm->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                               sizeof epi));
      GRAPHC_LT(cublasLtMatmulDescSetAttribute(gm->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                               &biasPtr, sizeof biasPtr));
    }
    GRAPHC_LT(
        cublasLtMatrixLayoutCreate(&gm->la, CUDA_R_32F, uint64_t(bs[1]), uint64_t(bs[0]), bs[1]));
    GRAPHC_LT(
        cublasLtMatrixLayoutCreate(&gm->lb, CUDA_R_32F, uint64_t(as[1]), uint64_t(as[0]), as[1]));
    GRAPHC_LT(cublasLtMatrixLayoutCreate(&gm->lc, CUDA_R_32F, uint64_t(nn), uint64_t(m), nn));

    cublasLtMatmulPreference_t pref = nullptr;
    GRAPHC_LT(cublasLtMatmulPreferenceCreate(&pref));
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t,
                    cublasStatus_t (*)(cublasLtMatmulPreference_t)>
        prefGuard(pref, cublasLtMatmulPreferenceDestroy);
    uint64_t workspace = dev_.workspaceBytes();
    // Split-K only through a separate reduction, never in place: the same
    // bits every run.
    uint32_t reduction =
        CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
    uint32_t alignA = alignment(b), alignB = alignment(a), alignC = alignment(c);
    GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                   &workspace, sizeof workspace));
    GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                   &reduction, sizeof reduction));
    GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                   &alignA, sizeof alignA));
    GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                   &alignB, sizeof alignB));
    GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                   &alignC, sizeof alignC));
    GRAPHC_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                   &alignC, sizeof alignC));

    cublasLtMatmulHeuristicResult_t results[8] = {};
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(dev_.lt(), gm->desc, gm->la, gm->lb, gm->lc,
                                                      gm->lc, pref, 8, results, &found);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED)
      found = 0;
    else if (s != CUBLAS_STATUS_SUCCESS)
      return error(fmt::format("cuBLASLt error in cublasLtMatmulAlgoGetHeuristic for the "
                               "{}x{}x{} product of kernel k{}: {}",
                               m, nn, kk, p.group, describeLt(s)));
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) {
        gm->algo = results[i].algo;
        out = std::move(gm);
        return {};
      }
    return {};
  };

  std::unique_ptr<Gemm> gm;
  if (k.lt != LtEpilogue::None)
    if (Status s = attempt(true, gm); !s)
      return s.diag();
  if (!gm) {
    if (Status s = attempt(false, gm); !s)
      return s.diag();
    if (!gm)
      return error(fmt::format("cuBLASLt has no algorithm for the {}x{}x{} fp32 product of "
                               "kernel k{}{}",
                               m, nn, kk, p.group, tf32_ ? " (tf32)" : ""));
    if (k.lt != LtEpilogue::None) {
      gm->bySelf = true;
      gm->relu = k.lt == LtEpilogue::ReluBias;
      auto f = dev_.helper("graphc_bias_add");
      if (!f)
        return f.diag();
      gm->biasAdd = *f;
    }
  }
  return gm;
}

Status Program::enqueueGemm(const CudaKernel &k, const Gemm &gm, int64_t n) {
  const float alpha = 1.0f, beta = 0.0f;
  GRAPHC_LT(cublasLtMatmul(
      dev_.lt(), gm.desc, &alpha, reinterpret_cast<const void *>(gm.b), gm.la,
      reinterpret_cast<const void *>(gm.a), gm.lb, &beta, reinterpret_cast<const void *>(gm.c),
      gm.lc, reinterpret_cast<void *>(gm.c), gm.lc, &gm.algo,
      reinterpret_cast<void *>(dev_.workspace()), dev_.workspaceBytes(), dev_.stream()));
  if (gm.bySelf) {
    CUdeviceptr c = gm.c, bias = gm.bias;
    int64_t total = gm.m * gm.n, cols = gm.n;
    int relu = gm.relu;
    void *args[] = {&c, &bias, &total, &cols, &relu};
    if (Status s = dev_.launch(gm.biasAdd, dev_.blocksFor(total, 256), 256, args); !s)
      return s;
  }
  return {};
}

// --- launches ----------------------------------------------------------------------

Expected<std::unique_ptr<Program::Batch>> Program::prepare(int64_t n) {
  auto batch = std::make_unique<Batch>();
  batch->gemms.resize(kernels_.size());
  for (size_t i = 0; i < kernels_.size(); ++i)
    if (kernels_[i].launch == Launch::Gemm) {
      auto gm = planGemm(kernels_[i], n);
      if (!gm)
        return gm.diag();
      batch->gemms[i] = std::move(*gm);
    }
  return batch;
}

Status Program::enqueue(int64_t n, Batch &batch) {
  for (size_t i = 0; i < kernels_.size(); ++i)
    if (Status s = enqueueKernel(i, n, batch); !s)
      return s;
  return enqueueOutputCopies(n);
}

Status Program::enqueueKernel(size_t i, int64_t n, Batch &batch) {
  const Driver &d = dev_.driver();
  CUdeviceptr table = table_.get();
  const CudaKernel &k = kernels_[i];
  const Shape &domain = k.plan.domain.shape;
  const int64_t total = k.plan.domain.numel(n);
  switch (k.launch) {
  case Launch::Elements: {
    int64_t t = total;
    void *args[] = {&table, &n, &t};
    if (t > 0)
      if (Status s = dev_.launch(main_[i], dev_.blocksFor(t, 256), 256, args); !s)
        return s;
    break;
  }
  case Launch::Rows:
  case Launch::SingleBlock: {
    int64_t rows = domain.empty() || domain.back() == 0 ? 0 : total / domain.back();
    void *args[] = {&table, &n, &rows};
    Status s = k.launch == Launch::SingleBlock
                   ? dev_.launch(main_[i], 1, 256, args) // exactly 256: its shared sums
                   : dev_.launch(main_[i], dev_.blocksFor(rows, 128), 128, args);
    if (!s)
      return s;
    break;
  }
  case Launch::Gemm: {
    if (Status s = enqueueGemm(k, *batch.gemms[i], n); !s)
      return s;
    if (main_[i]) { // the generated epilogue over C
      int64_t t = total;
      void *args[] = {&table, &n, &t};
      if (Status s = dev_.launch(main_[i], dev_.blocksFor(t, 256), 256, args); !s)
        return s;
    }
    if (colsum_[i]) { // one thread per column, no grid-stride loop
      int64_t cols = graph_.type(k.plan.colsum).numel(n);
      void *args[] = {&table, &n, &cols};
      if (Status s = dev_.launch(colsum_[i], (cols + 127) / 128, 128, args); !s)
        return s;
    }
    break;
  }
  case Launch::HostCopy: {
    for (auto [part, offset] : codegen::cuda::packCopies(graph_, plan_, k.plan.pack)) {
      CUdeviceptr dst = at_[size_t(k.plan.pack)] + CUdeviceptr(offset);
      size_t count = size_t(graph_.type(part).numel(n));
      if (auto bits = codegen::cuda::packFill(graph_, part))
        GRAPHC_CU(d, d.cuMemsetD32Async(dst, *bits, count, dev_.stream()));
      else
        GRAPHC_CU(d, d.cuMemcpyDtoDAsync(dst, at_[size_t(part)], count * 4, dev_.stream()));
    }
    break;
  }
  }
  return {};
}

Status Program::enqueueOutputCopies(int64_t n) {
  const Driver &d = dev_.driver();
  for (auto [v, dst] : outputCopies_)
    GRAPHC_CU(d, d.cuMemcpyDtoDAsync(dst, at_[size_t(v)], size_t(graph_.type(v).numel(n)) * 4,
                                     dev_.stream()));
  return {};
}

Expected<Program::Batch *> Program::batchFor(int64_t n) {
  if (auto it = batches_.find(n); it != batches_.end())
    return it->second.get();
  auto batch = prepare(n);
  if (!batch)
    return batch.diag();
  Batch *b = batch->get();
  batches_[n] = std::move(*batch);
  return b;
}

Status Program::runKernels(int64_t n, size_t first, size_t last) {
  GRAPHC_CHECK(n >= 1 && n <= plan_.batch, "batch {} outside 1..{}", n, plan_.batch);
  GRAPHC_CHECK(first <= last && last <= kernels_.size(), "kernels [{}, {}) of {}", first, last,
               kernels_.size());
  auto batch = batchFor(n);
  if (!batch)
    return batch.diag();
  for (size_t i = first; i < last; ++i)
    if (Status s = enqueueKernel(i, n, **batch); !s)
      return s;
  if (last == kernels_.size())
    if (Status s = enqueueOutputCopies(n); !s)
      return s;
  return dev_.synchronize();
}

Expected<std::vector<float>> Program::read(ir::ValueId v, int64_t n) {
  std::vector<float> out;
  if (at_[size_t(v)] == 0)
    return out;
  out.resize(size_t(graph_.type(v).numel(n)));
  const Driver &d = dev_.driver();
  GRAPHC_CU(d, d.cuMemcpyDtoHAsync(out.data(), at_[size_t(v)], out.size() * 4, dev_.stream()));
  if (Status s = dev_.synchronize(); !s)
    return s.diag();
  return out;
}

Status Program::run(int64_t n) {
  GRAPHC_CHECK(n >= 1 && n <= plan_.batch, "batch {} outside 1..{}", n, plan_.batch);
  GRAPHC_CHECK(!at_.empty() || graph_.size() == 0, "program run before bind");
  const Driver &d = dev_.driver();
  if (auto it = batches_.find(n); it != batches_.end()) {
    if (it->second->exec) {
      GRAPHC_CU(d, d.cuGraphLaunch(it->second->exec, dev_.stream()));
      return {};
    }
    return enqueue(n, *it->second);
  }

  // First time at this size: plan the products, launch directly (which
  // also loads whatever cuBLASLt loads lazily), then capture the same
  // launches into a graph for the next runs.
  auto batch = prepare(n);
  if (!batch)
    return batch.diag();
  if (Status s = enqueue(n, **batch); !s)
    return s;
  // The step above has been enqueued and counts: a capture that fails now
  // must not fail it. This size then launches directly from now on.
  if (graphsEnabled())
    if (Status s = capture(n, **batch); !s) {
      captureFailure_ = s.diag().message;
      (*batch)->exec = nullptr;
    }
  batches_[n] = std::move(*batch);
  return {};
}

Status Program::capture(int64_t n, Batch &batch) {
  const Driver &d = dev_.driver();
  GRAPHC_CU(d, d.cuStreamBeginCapture(dev_.stream(), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  Status captured = enqueue(n, batch);
  CUgraph graph = nullptr;
  CUresult r = d.cuStreamEndCapture(dev_.stream(), &graph);
  std::unique_ptr<CUgraph_st, CUresult (*)(CUgraph)> guard(graph, d.cuGraphDestroy);
  if (!captured)
    return captured;
  if (r != CUDA_SUCCESS)
    return d.fail(r, "cuStreamEndCapture");
  CUgraphExec exec = nullptr;
  GRAPHC_CU(d, d.cuGraphInstantiateWithFlags(&exec, graph, 0));
  batch.exec = exec;
  return {};
}

} // namespace graphc::runtime::cuda
