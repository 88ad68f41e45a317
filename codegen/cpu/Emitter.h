// codegen/cpu/Emitter.h - the IRBuilder toolkit the kernel emitters share:
// one function at a time, its buffer table, loops, index arithmetic over
// shapes with a symbolic batch, and the scalar math of every pointwise op.
#pragma once

#include "ir/Graph.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace graphc::codegen::cpu {

class Emitter {
public:
  Emitter(llvm::Module &m, const ir::Graph &g, const std::vector<bool> &stored);

  /// Starts `void name(ptr ptrs, i64 n, <extra i64/ptr args>)`.
  llvm::Function *begin(const std::string &name, const std::vector<llvm::Type *> &extra);
  /// Closes the function with `ret void`.
  void finish();

  llvm::Value *arg(unsigned i) { return fn_->getArg(i); }
  llvm::Value *n() { return fn_->getArg(1); }

  /// The buffer of value v (loaded from the pointer table once, in the entry).
  llvm::Value *buffer(ir::ValueId v);
  /// A float slot in the entry block (promoted to a register by mem2reg).
  llvm::Value *slot(llvm::Type *t, const std::string &name, unsigned count = 1);

  llvm::Value *i64(int64_t v) { return b.getInt64(uint64_t(v)); }
  llvm::Value *f32(double v) { return llvm::ConstantFP::get(b.getFloatTy(), v); }
  /// A dimension: the run-time batch for N, else the constant.
  llvm::Value *dim(int64_t d) { return d == ir::kBatch ? n() : i64(d); }
  llvm::Value *numel(const ir::Shape &s);

  /// for (i = lo; i < hi; ++i) body(i). `parallel`: the caller promises that
  /// no iteration reads or writes memory another one writes (an elementwise
  /// chain, whose outputs may be its inputs' very buffers, as an in-place
  /// optimizer update's are). The loop is then annotated as such
  /// (llvm.loop.parallel_accesses), and LLVM vectorises it without the
  /// run-time overlap checks that would send exact aliases to scalar code.
  /// `whole` (with `parallel`): a short loop of a constant count kept whole
  /// for the vectoriser (llvm.loop.unroll.disable), which LLVM would
  /// otherwise unroll first into scalar code it cannot vectorise.
  void loop(llvm::Value *lo, llvm::Value *hi, const std::function<void(llvm::Value *)> &body,
            bool parallel = false, bool whole = false);
  void ifThen(llvm::Value *cond, const std::function<void()> &body);

  /// Row-major multi-index of linear index e in shape s, and back.
  std::vector<llvm::Value *> unravel(const ir::Shape &s, llvm::Value *e);
  llvm::Value *ravel(const ir::Shape &s, const std::vector<llvm::Value *> &idx);
  /// The index into an operand of shape `from` that broadcasts to element e
  /// of shape `to`.
  llvm::Value *broadcastIndex(const ir::Shape &to, const ir::Shape &from, llvm::Value *e);

  /// Element `index` of value v's buffer as a float (i32 values converted).
  llvm::Value *load(ir::ValueId v, llvm::Value *index);
  /// The raw i32 element of an i32 value.
  llvm::Value *loadI32(ir::ValueId v, llvm::Value *index);
  void store(ir::ValueId v, llvm::Value *index, llvm::Value *x);

  /// The value of an operand outside the kernel at element e of `domain`:
  /// a constant, the batch size, or a broadcast load.
  llvm::Value *external(ir::ValueId v, const ir::Shape &domain, llvm::Value *e);
  /// Operand `v` of node `user` at element e of `domain`, read from memory:
  /// like external(), except that one_hot reads label e / classes.
  llvm::Value *operandOf(ir::ValueId user, ir::ValueId v, const ir::Shape &domain, llvm::Value *e);
  /// One pointwise op on float operands; e is the element's index in the
  /// node's own shape (for random_mask and one_hot).
  llvm::Value *pointwise(ir::ValueId v, const std::vector<llvm::Value *> &in, llvm::Value *e);

  llvm::Value *call(llvm::Intrinsic::ID id, llvm::Value *x);
  llvm::Value *maxf(llvm::Value *a, llvm::Value *c);

  llvm::IRBuilder<> b;
  llvm::Module &mod;
  const ir::Graph &g;
  const std::vector<bool> &stored;

private:
  llvm::Function *fn_ = nullptr;
  llvm::BasicBlock *entry_ = nullptr;
  std::map<ir::ValueId, llvm::Value *> buffers_;
};

} // namespace graphc::codegen::cpu
