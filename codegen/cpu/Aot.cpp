// codegen/cpu/Aot.cpp - the model's descriptor and entry points in LLVM IR,
// its object file, the archive, the header.
#include "codegen/cpu/Aot.h"

#include "codegen/DeviceImage.h"

#include <fmt/format.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Object/Archive.h>
#include <llvm/Object/ArchiveWriter.h>
#include <llvm/Support/MemoryBuffer.h>

#include <algorithm>
#include <list>

namespace graphc::embedded {
extern const unsigned char graphc_rt[];
extern const std::size_t graphc_rt_size;
extern const unsigned char graphc_model[];
extern const std::size_t graphc_model_size;
#ifdef GRAPHC_HAVE_CUDA_AOT
extern const unsigned char graphc_cuda_model[];
extern const std::size_t graphc_cuda_model_size;
extern const unsigned char graphc_cuda_linked[];
extern const std::size_t graphc_cuda_linked_size;
#endif
} // namespace graphc::embedded

namespace graphc::codegen::cpu {
namespace {

using namespace ir;

/// Builds the constant descriptor (runtime/rt/graphc_model.h's
/// grt_model_desc, and for the cuda target graphc_cuda_model.h's
/// grt_cuda_desc around it) and the prefixed entry points.
class Descriptor {
public:
  Descriptor(llvm::Module &m, const ir::ModelInfo &info, Program &step, Program &predict,
             Program *gradients, Program *update, int64_t maxBatch, uint64_t seed,
             const std::string &name, const DeviceImage *device,
             const std::vector<VectorTarget> &isas)
      : m_(m), c_(m.getContext()), info_(info), step_(step), predict_(predict),
        gradients_(gradients), update_(update), maxBatch_(maxBatch), seed_(seed), name_(name),
        device_(device), isas_(isas) {}

  void emit() {
    auto *ptr = llvm::PointerType::get(c_, 0);
    llvm::Type *i64 = llvm::Type::getInt64Ty(c_), *f64 = llvm::Type::getDoubleTy(c_);
    auto *tensorTy = llvm::StructType::get(
        c_, {ptr, i64, i64, llvm::ArrayType::get(i64, 4), f64, f64, i64, i64});
    auto *programTy = llvm::StructType::get(c_, {ptr, i64, i64, i64, ptr, ptr});
    auto *modelTy =
        llvm::StructType::get(c_, {ptr, i64, i64, ptr, i64, ptr, i64, i64, i64, ptr, f64, programTy,
                                   programTy, i64, i64, ptr, programTy, programTy});
    // The CPU code of each ISA, best first (grt_isa_desc); none for cuda.
    // The split step's run functions are null where it was not compiled.
    auto *isaTy = llvm::StructType::get(c_, {ptr, i64, ptr, ptr, ptr, ptr});
    llvm::Constant *null = llvm::ConstantPointerNull::get(ptr);
    std::vector<llvm::Constant *> isaDescs;
    std::vector<VectorTarget> best = device_ ? std::vector<VectorTarget>{} : isas_;
    std::sort(best.begin(), best.end(),
              [](const VectorTarget &x, const VectorTarget &y) { return x.level > y.level; });
    for (const VectorTarget &t : best) {
      std::string infix = isas_.size() > 1 ? t.name + "_" : "";
      isaDescs.push_back(llvm::ConstantStruct::get(
          isaTy, {str(t.name), int64(t.level), m_.getFunction(name_ + "_step_" + infix + "run"),
                  m_.getFunction(name_ + "_predict_" + infix + "run"),
                  gradients_ ? static_cast<llvm::Constant *>(
                                   m_.getFunction(name_ + "_gradients_" + infix + "run"))
                             : null,
                  update_ ? static_cast<llvm::Constant *>(
                                m_.getFunction(name_ + "_update_" + infix + "run"))
                          : null}));
    }
    llvm::Constant *isaArray =
        isaDescs.empty() ? llvm::ConstantPointerNull::get(ptr) : array(isaTy, isaDescs, "isas");

    std::vector<llvm::Constant *> tensors;
    for (const auto &p : info_.params) {
      std::vector<llvm::Constant *> shape;
      for (size_t i = 0; i < 4; ++i)
        shape.push_back(llvm::ConstantInt::get(i64, i < p.shape.size() ? uint64_t(p.shape[i]) : 1));
      tensors.push_back(llvm::ConstantStruct::get(
          tensorTy,
          {str(p.name), llvm::ConstantInt::get(i64, uint64_t(p.offset)),
           llvm::ConstantInt::get(i64, p.shape.size()),
           llvm::ConstantArray::get(llvm::ArrayType::get(i64, 4), shape),
           llvm::ConstantFP::get(f64, p.initBound), llvm::ConstantFP::get(f64, p.initShift),
           llvm::ConstantInt::get(i64, p.trainable ? 1 : 0),
           llvm::ConstantInt::get(i64, p.initNormal ? 1 : 0)}));
    }
    int64_t sample = 1;
    for (int64_t d : info_.sample)
      sample *= d;
    auto *desc = new llvm::GlobalVariable(
        m_, modelTy, true, llvm::GlobalValue::InternalLinkage,
        llvm::ConstantStruct::get(
            modelTy, {str(name_), int64(info_.numParams), int64(int64_t(tensors.size())),
                      array(tensorTy, tensors, "tensors"), int64(int64_t(info_.stateSlots.size())),
                      strings(info_.stateSlots, "slots"), int64(sample), int64(info_.classes),
                      int64(maxBatch_), str(info_.optimizer.str()),
                      llvm::ConstantFP::get(f64, info_.optimizer.learningRate),
                      program(programTy, step_, name_ + "_step_"),
                      program(programTy, predict_, name_ + "_predict_"), int64(int64_t(seed_)),
                      int64(int64_t(isaDescs.size())), isaArray,
                      gradients_ ? program(programTy, *gradients_, name_ + "_gradients_")
                                 : llvm::ConstantAggregateZero::get(programTy),
                      update_ ? program(programTy, *update_, name_ + "_update_")
                              : llvm::ConstantAggregateZero::get(programTy)}),
        name_ + "_descriptor");

    llvm::Type *i32 = llvm::Type::getInt32Ty(c_), *f32p = ptr, *vd = llvm::Type::getVoidTy(c_);
    std::string rt = "grt_model_";
    llvm::Constant *top = desc;
    if (device_) {
      rt = "grt_cuda_";
      auto *deviceTy = llvm::StructType::get(
          c_, {ptr, i64, ptr, ptr, ptr, i64, i64, ptr, ptr, i64, ptr, ptr, ptr, i64, i64});
      // The driver and cuBLASLt as the program links them (graphc_cuda_api.h).
      llvm::Constant *api = m_.getOrInsertGlobal("grt_cuda_linked", llvm::Type::getInt8Ty(c_));
      top = new llvm::GlobalVariable(
          m_, deviceTy, true, llvm::GlobalValue::InternalLinkage,
          llvm::ConstantStruct::get(
              deviceTy,
              {desc, int64(int64_t(device_->strings.size())), strings(device_->strings, "strings"),
               table(device_->step, "step_table"), table(device_->predict, "predict_table"),
               int64(int64_t(device_->step.size())), int64(int64_t(device_->predict.size())),
               str(device_->helpersPtx), str(device_->arch), int64(device_->tf32 ? 1 : 0), api,
               table(device_->gradients, "gradients_table"), table(device_->update, "update_table"),
               int64(int64_t(device_->gradients.size())), int64(int64_t(device_->update.size()))}),
          name_ + "_device");
      forward("train_step_device", i32, {ptr, i64, i64, i64, ptr}, "grt_cuda_train_step_device");
      forward("predict_device", i32, {ptr, i64, i64, i64}, "grt_cuda_predict_device");
    }
    // <name>_create(ctx**, weights, threads) -> grt_model_create(&desc, ...)
    forward("create", i32, {ptr, ptr, i32}, rt + "create", top);
    forward("destroy", vd, {ptr}, rt + "destroy");
    forward("train_step", i32, {ptr, f32p, ptr, i64, ptr}, rt + "train_step");
    forward("predict", i32, {ptr, f32p, i64, ptr}, rt + "predict");
    forward("params", ptr, {ptr}, rt + "params");
    forward("step", i64, {ptr}, rt + "step");
    forward("save", i32, {ptr, ptr}, rt + "save");
    forward("load", i32, {ptr, ptr}, rt + "load");
    forward("error", ptr, {ptr}, rt + "error");
    if (!device_)
      forward("isa", ptr, {ptr}, "grt_model_isa");
    // The cuda runtime's compute_gradients also takes an output pointer: null.
    forward("compute_gradients", i32, {ptr, f32p, ptr, i64, i64, ptr, ptr},
            rt + "compute_gradients", nullptr,
            device_ ? std::vector<llvm::Constant *>{llvm::ConstantPointerNull::get(ptr)}
                    : std::vector<llvm::Constant *>{});
    forward("apply_update", i32, {ptr, ptr}, rt + "apply_update");
    constant("num_params", i64, llvm::ConstantInt::get(i64, uint64_t(info_.numParams)));
    constant("max_batch", i64, llvm::ConstantInt::get(i64, uint64_t(maxBatch_)));
    constant("classes", i64, llvm::ConstantInt::get(i64, uint64_t(info_.classes)));
    constant("sample_size", i64, llvm::ConstantInt::get(i64, uint64_t(sample)));
    constant("learning_rate", f64, llvm::ConstantFP::get(f64, info_.optimizer.learningRate));
    constant("optimizer", ptr, str(info_.optimizer.str()));
  }

private:
  llvm::Constant *int64(int64_t v) {
    return llvm::ConstantInt::get(llvm::Type::getInt64Ty(c_), uint64_t(v));
  }
  llvm::Constant *str(const std::string &s) {
    auto *init = llvm::ConstantDataArray::getString(c_, s);
    return new llvm::GlobalVariable(m_, init->getType(), true, llvm::GlobalValue::PrivateLinkage,
                                    init, ".str");
  }
  llvm::Constant *array(llvm::Type *t, const std::vector<llvm::Constant *> &items,
                        const std::string &what) {
    auto *at = llvm::ArrayType::get(t, items.size());
    return new llvm::GlobalVariable(m_, at, true, llvm::GlobalValue::PrivateLinkage,
                                    llvm::ConstantArray::get(at, items), name_ + "_" + what);
  }
  /// A program table of the device image; null where it is empty.
  llvm::Constant *table(const std::vector<int64_t> &items, const std::string &what) {
    if (items.empty())
      return llvm::ConstantPointerNull::get(llvm::PointerType::get(c_, 0));
    auto *init = llvm::ConstantDataArray::get(
        c_,
        llvm::ArrayRef<uint64_t>(reinterpret_cast<const uint64_t *>(items.data()), items.size()));
    return new llvm::GlobalVariable(m_, init->getType(), true, llvm::GlobalValue::PrivateLinkage,
                                    init, name_ + "_" + what);
  }
  llvm::Constant *strings(const std::vector<std::string> &items, const std::string &what) {
    std::vector<llvm::Constant *> ps;
    for (const std::string &s : items)
      ps.push_back(str(s));
    if (ps.empty())
      return llvm::ConstantPointerNull::get(llvm::PointerType::get(c_, 0));
    return array(llvm::PointerType::get(c_, 0), ps, what);
  }
  llvm::Constant *program(llvm::StructType *t, Program &p, const std::string &prefix) {
    std::vector<std::string> ins, outs;
    for (ValueId v : p.graph.inputs())
      ins.push_back(p.graph.node(v).attrs.s("name"));
    for (const Output &o : p.graph.outputs())
      outs.push_back(o.name);
    llvm::Constant *run = llvm::ConstantPointerNull::get(llvm::PointerType::get(c_, 0));
    return llvm::ConstantStruct::get(t,
                                     {run, int64(device_ ? 0 : p.plan.arenaBytes),
                                      int64(int64_t(ins.size())), int64(int64_t(outs.size())),
                                      strings(ins, prefix + "in"), strings(outs, prefix + "out")});
  }
  /// `<name>_<what>(args...)` returning `target([desc,] args... [, tail...])`.
  void forward(const std::string &what, llvm::Type *ret, std::vector<llvm::Type *> args,
               const std::string &target, llvm::Constant *desc = nullptr,
               const std::vector<llvm::Constant *> &tail = {}) {
    auto *fn = llvm::Function::Create(llvm::FunctionType::get(ret, args, false),
                                      llvm::Function::ExternalLinkage, name_ + "_" + what, m_);
    std::vector<llvm::Type *> targs = args;
    if (desc)
      targs.insert(targs.begin(), llvm::PointerType::get(c_, 0));
    for (llvm::Constant *c : tail)
      targs.push_back(c->getType());
    auto callee = m_.getOrInsertFunction(target, llvm::FunctionType::get(ret, targs, false));
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", fn));
    std::vector<llvm::Value *> vals;
    if (desc)
      vals.push_back(desc);
    for (auto &a : fn->args())
      vals.push_back(&a);
    vals.insert(vals.end(), tail.begin(), tail.end());
    llvm::Value *r = b.CreateCall(callee, vals);
    if (ret->isVoidTy())
      b.CreateRetVoid();
    else
      b.CreateRet(r);
  }
  void constant(const std::string &what, llvm::Type *t, llvm::Constant *v) {
    auto *fn = llvm::Function::Create(llvm::FunctionType::get(t, {}, false),
                                      llvm::Function::ExternalLinkage, name_ + "_" + what, m_);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(c_, "entry", fn));
    b.CreateRet(v);
  }

  llvm::Module &m_;
  llvm::LLVMContext &c_;
  const ir::ModelInfo &info_;
  Program &step_, &predict_;
  Program *gradients_, *update_; ///< null: the library has no split step
  int64_t maxBatch_;
  uint64_t seed_;
  std::string name_;
  const DeviceImage *device_;
  std::vector<VectorTarget> isas_;
};

std::string baseName(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dirName(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string errorText(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

} // namespace

std::string libraryHeader(const ir::ModelInfo &info, int64_t maxBatch, const std::string &name,
                          bool cuda, const std::string &isas) {
  std::string guard = name;
  for (char &c : guard)
    c = char(std::toupper((unsigned char)c));
  int64_t sample = 1;
  for (int64_t d : info.sample)
    sample *= d;
  std::string shape = ir::str(info.sample);
  return fmt::format(
      R"(/* {0}.h - the training step of model '{1}', compiled ahead of time by graphc.
 *
{9} * Every function is thread-compatible: one context per thread, or a lock.
 *
 *   {0}_ctx *ctx;
 *   if ({0}_create(&ctx, NULL, 0) != {2}_OK) {{ puts({0}_error(NULL)); return 1; }}
 *   float loss;
 *   {0}_train_step(ctx, x, labels, n, &loss);     (x: n x {3} floats, labels: n ints)
 *   {0}_predict(ctx, x, n, out);                  (out: n x {4} floats)
 *   {0}_save(ctx, "{0}.safetensors");
 *   {0}_destroy(ctx);
 *
 * Inputs are per-sample shape {5}, row-major; labels are class indices in
 * [0, {4}). A batch holds 1 to {6} samples; any size in between works.
 * Optimizer: {7}.
 * Checkpoints are safetensors files with PyTorch nn.Sequential names
 * ("1.weight", ...), optimizer state and the step counter; graphc's own
 * checkpoints load here and these load into graphc and PyTorch.
 */
#ifndef {2}_H
#define {2}_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

/* Return codes: 0 is success; otherwise {0}_error(ctx) says what failed. */
enum {{
  {2}_OK = 0,
  {2}_ERR_ARGUMENT = 1, /* a null pointer, a batch size or label out of range */
  {2}_ERR_IO = 2,       /* a file could not be read or written */
  {2}_ERR_FORMAT = 3,   /* a file is not a checkpoint of this model */
  {2}_ERR_MEMORY = 4,   /* out of memory */
  {2}_ERR_DEVICE = 5,   /* the GPU or its driver failed (cuda target) */
  {2}_ERR_CPU = 6       /* this CPU cannot execute the library's code (see above) */
}};

typedef struct {0}_ctx {0}_ctx;

/** Creates a context: Torch7-initialised weights (the same as {0}.safetensors),
 *  or those of `weights` (a safetensors file) when it is not NULL. `threads`
 *  0 uses every core. On failure *ctx is NULL and {0}_error(NULL) explains. */
int {0}_create({0}_ctx **ctx, const char *weights, int threads);
void {0}_destroy({0}_ctx *ctx);

/** One training step on n samples: forward, loss, backward, optimizer update.
 *  *loss receives the batch's mean loss. */
int {0}_train_step({0}_ctx *ctx, const float *x, const int32_t *labels, int64_t n,
                   float *loss);
/** The model's output for n samples (evaluation mode: Dropout off). */
int {0}_predict({0}_ctx *ctx, const float *x, int64_t n, float *out);

{10}
/** The flat parameter buffer ({0}_num_params() floats), readable and writable.{11} */
float *{0}_params({0}_ctx *ctx);
/** Optimizer updates done so far. */
int64_t {0}_step({0}_ctx *ctx);
/** Saves weights, optimizer state and step counter (atomically). */
int {0}_save({0}_ctx *ctx, const char *path);
/** Loads weights and, when present, optimizer state and step counter. */
int {0}_load({0}_ctx *ctx, const char *path);
{12}{13}/** What the last failed call on ctx (or the last failed create, for NULL) said. */
const char *{0}_error({0}_ctx *ctx);

int64_t {0}_num_params(void);   /* {8} */
int64_t {0}_max_batch(void);    /* {6} */
int64_t {0}_classes(void);      /* {4} */
int64_t {0}_sample_size(void);  /* {3} floats per sample */
double {0}_learning_rate(void);
const char *{0}_optimizer(void);

#ifdef __cplusplus
}}
#endif

#endif
)",
      name, info.name, guard, sample, info.classes, shape, maxBatch, info.optimizer.str(),
      info.numParams,
      cuda
          ? fmt::format(
                R"( * Built for the GPU (--target cuda): parameters, optimizer state and the
 * step stay on device 0; kernels are PTX the driver compiles on create.
 * Link lib{0}.a with the CUDA driver and cuBLASLt, and cuDNN for the
 * convolutions (optional: without it they run as generated kernels):
 *   cc prog.c -L. -l{0} -L/usr/local/cuda/lib64 -Wl,--no-as-needed -lcudnn
 *      -Wl,--as-needed -lcublasLt -lcuda -lm -lpthread
)",
                name)
          : fmt::format(
                R"( * Link lib{0}.a with libc, libm and pthreads:  cc prog.c -L. -l{0} -lm -lpthread
 * CPU code: {1}.
 * {0}_create refuses, with {2}_ERR_CPU, a CPU that cannot execute it
 * ({0}_isa says which code runs; graphc compile --cpu generic builds code for
 * any x86-64 CPU).
)",
                name, isas, guard),
      cuda ? fmt::format(R"(
/** The same with device pointers (CUdeviceptr) for x, labels and out:
 *  the batch does not pass through the host. They first wait for all work
 *  already queued on the device, so x may come from the caller's kernels. */
int {0}_train_step_device({0}_ctx *ctx, uint64_t x, uint64_t labels, int64_t n,
                          float *loss);
int {0}_predict_device({0}_ctx *ctx, uint64_t x, int64_t n, uint64_t out);
)",
                         name)
           : std::string(),
      cuda ? "\n *  On the GPU target this is a host copy, fetched by this call; writes to it\n"
             " *  reach the device at the next step. NULL if the copy failed."
           : "",
      cuda ? ""
           : fmt::format("/** The vector ISA whose code ctx runs: \"avx512\", "
                         "\"avx2\" or \"generic\". */\n"
                         "const char *{0}_isa({0}_ctx *ctx);\n",
                         name),
      fmt::format(
          R"(/** The training step in two halves, so that a program can combine the
 *  gradients of several processes between them (data parallelism, e.g. one
 *  MPI_Allreduce; see examples/embed). compute_gradients runs forward and
 *  backward on n samples, `offset` being the samples of the global batch
 *  before them (Dropout's masks are drawn per global sample); `grad`
 *  ({0}_num_params() floats) receives their mean gradient, and in the tail
 *  of any non-trainable buffers (BatchNorm's running statistics) their new
 *  values. apply_update makes the optimizer update with `grad` (averaged:
 *  weight each process's by its share of the batch and sum) and counts the
 *  step. Together they compute what {0}_train_step computes. A library of an
 *  optimizer without a split form (optim.nag) returns {2}_ERR_ARGUMENT.{1} */
int {0}_compute_gradients({0}_ctx *ctx, const float *x, const int32_t *labels, int64_t n,
                          int64_t offset, float *grad, float *loss);
int {0}_apply_update({0}_ctx *ctx, const float *grad);
)",
          name,
          cuda ? "\n *  On the GPU target x, labels and grad are host memory: each call waits\n"
                 " *  for the device, so the program may reduce grad as soon as it returns."
               : "",
          guard));
}

Expected<LibraryFiles> buildLibrary(const ir::ModelInfo &info, Program &step, Program &predict,
                                    int64_t maxBatch, uint64_t seed, const std::string &out,
                                    const std::vector<VectorTarget> &isas,
                                    const DeviceImage *device, Program *gradients,
                                    Program *update) {
  std::string name = baseName(out), dir = dirName(out);
  if (name.empty() || !(std::isalpha((unsigned char)name[0]) || name[0] == '_'))
    return error(fmt::format("-o {}: the name must start with a letter", quote(out)));
  for (char c : name)
    if (!(std::isalnum((unsigned char)c) || c == '_'))
      return error(fmt::format("-o {}: the name may hold letters, digits and '_' only "
                               "(it prefixes every symbol)",
                               quote(out)));
#ifndef GRAPHC_HAVE_CUDA_AOT
  if (device)
    return error("--target cuda --emit lib: this graphc was built without the CUDA toolkit's "
                 "cuBLASLt");
#endif
  // The cuda target's object holds the descriptor and entry points only;
  // its split step is the device image's gradients and update tables.
  std::vector<Program *> programs;
  std::vector<std::string> prefixes;
  if (device || !gradients || !update)
    gradients = update = nullptr;
  if (!device)
    programs = {&step, &predict}, prefixes = {name + "_step_", name + "_predict_"};
  if (gradients) {
    programs.insert(programs.end(), {gradients, update});
    prefixes.insert(prefixes.end(), {name + "_gradients_", name + "_update_"});
  }
  auto obj =
      emitCode(programs, prefixes, EmitKind::Object, isas, name + "_micro", [&](llvm::Module &m) {
        Descriptor(m, info, step, predict, gradients, update, maxBatch, seed, name, device, isas)
            .emit();
      });
  if (!obj)
    return obj.diag();

  std::vector<llvm::NewArchiveMember> members;
  std::list<std::string> names; // the members refer to their names until written
  auto member = [&](const std::string &file, const void *data, size_t size) {
    names.push_back(file);
    llvm::NewArchiveMember mbr(llvm::MemoryBufferRef(
        llvm::StringRef(static_cast<const char *>(data), size), names.back()));
    members.push_back(std::move(mbr));
  };
  member(name + ".o", obj->data(), obj->size());
  member("graphc_rt.o", embedded::graphc_rt, embedded::graphc_rt_size);
  member("graphc_model.o", embedded::graphc_model, embedded::graphc_model_size);
#ifdef GRAPHC_HAVE_CUDA_AOT
  if (device) {
    member("graphc_cuda_model.o", embedded::graphc_cuda_model, embedded::graphc_cuda_model_size);
    member("graphc_cuda_linked.o", embedded::graphc_cuda_linked, embedded::graphc_cuda_linked_size);
  }
#endif
  LibraryFiles files;
  files.archivePath = dir + "/lib" + name + ".a";
  auto archive = llvm::writeArchiveToBuffer(members, llvm::SymtabWritingMode::NormalSymtab,
                                            llvm::object::Archive::K_GNU, true, false);
  if (!archive)
    return error(
        fmt::format("cannot make {}: {}", files.archivePath, errorText(archive.takeError())));
  files.archive = (*archive)->getBuffer().str();
  std::string isaText;
  for (size_t i = 0; i < isas.size(); ++i)
    isaText += (i ? ", and " : "") + isas[i].name +
               (isas.size() > 1 ? (i ? " where the CPU has it" : " (the least it needs)") : "");
  files.headerPath = dir + "/" + name + ".h";
  files.header = libraryHeader(info, maxBatch, name, device != nullptr, isaText);
  return files;
}

} // namespace graphc::codegen::cpu
