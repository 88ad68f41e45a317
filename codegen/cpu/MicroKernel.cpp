// codegen/cpu/MicroKernel.cpp - the register-blocked GEMM micro-kernel.
//
// An MR x NR tile of C lives in MR * NR/W vector registers (W floats each)
// for the whole depth kc: each step loads NR/W vectors of the packed B
// panel, broadcasts MR values of the packed A sliver, and issues MR * NR/W
// fused multiply-adds (SSE2, without a broadcast load, reads A packed
// pre-broadcast: VectorTarget::aCopies). With AVX-512 (W = 16) the tile is 8 x 32: 16
// accumulators, 2 B vectors and a broadcast stay within the 32 registers.
#include "codegen/cpu/Emitter.h"
#include "codegen/cpu/KernelEmitter.h"

#include <llvm/IR/Intrinsics.h>

namespace graphc::codegen::cpu {

void emitMicroKernel(llvm::Module &m, const VectorTarget &t, const std::string &name) {
  llvm::LLVMContext &ctx = m.getContext();
  llvm::IRBuilder<> b(ctx);
  auto *f32 = b.getFloatTy();
  auto *vec = llvm::FixedVectorType::get(f32, unsigned(t.width));
  auto *ptr = b.getPtrTy();
  auto *i64 = b.getInt64Ty();
  auto *ft = llvm::FunctionType::get(b.getVoidTy(), {i64, ptr, ptr, ptr, i64, i64}, false);
  auto *fn = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, m);
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  for (unsigned a : {1u, 2u, 3u})
    fn->addParamAttr(a, llvm::Attribute::NoAlias);
  llvm::Value *kc = fn->getArg(0), *ap = fn->getArg(1), *bp = fn->getArg(2);
  llvm::Value *c = fn->getArg(3), *ldc = fn->getArg(4), *accumulate = fn->getArg(5);
  const int mr = t.mr, nv = t.nr / t.width;
  llvm::Function *fma = llvm::Intrinsic::getDeclaration(&m, llvm::Intrinsic::fmuladd, {vec});

  auto *entry = llvm::BasicBlock::Create(ctx, "entry", fn);
  auto *loop = llvm::BasicBlock::Create(ctx, "k", fn);
  auto *done = llvm::BasicBlock::Create(ctx, "done", fn);
  b.SetInsertPoint(entry);
  llvm::Value *zero = llvm::ConstantAggregateZero::get(vec);
  b.CreateCondBr(b.CreateICmpSGT(kc, b.getInt64(0)), loop, done);

  b.SetInsertPoint(loop);
  llvm::PHINode *k = b.CreatePHI(i64, 2, "k");
  k->addIncoming(b.getInt64(0), entry);
  std::vector<llvm::PHINode *> acc;
  for (int i = 0; i < mr * nv; ++i) {
    acc.push_back(b.CreatePHI(vec, 2));
    acc.back()->addIncoming(zero, entry);
  }
  std::vector<llvm::Value *> bv;
  for (int v = 0; v < nv; ++v) {
    llvm::Value *off = b.CreateAdd(b.CreateMul(k, b.getInt64(t.nr)), b.getInt64(v * t.width));
    bv.push_back(b.CreateAlignedLoad(vec, b.CreateInBoundsGEP(f32, bp, off), llvm::Align(4)));
  }
  std::vector<llvm::Value *> next(acc.begin(), acc.end());
  for (int r = 0; r < mr; ++r) {
    llvm::Value *off = b.CreateAdd(b.CreateMul(k, b.getInt64(mr)), b.getInt64(r));
    llvm::Value *splat;
    if (t.aCopies == 1) {
      llvm::Value *a = b.CreateLoad(f32, b.CreateInBoundsGEP(f32, ap, off));
      splat = b.CreateVectorSplat(unsigned(t.width), a);
    } else { // packed pre-broadcast: the value's copies are one vector
      llvm::Value *at = b.CreateInBoundsGEP(f32, ap, b.CreateMul(off, b.getInt64(t.aCopies)));
      splat = b.CreateAlignedLoad(vec, at, llvm::Align(4));
    }
    for (int v = 0; v < nv; ++v)
      next[size_t(r * nv + v)] = b.CreateCall(fma, {splat, bv[size_t(v)], acc[size_t(r * nv + v)]});
  }
  llvm::Value *k1 = b.CreateAdd(k, b.getInt64(1), "", true, true);
  k->addIncoming(k1, loop);
  for (size_t i = 0; i < acc.size(); ++i)
    acc[i]->addIncoming(next[i], loop);
  b.CreateCondBr(b.CreateICmpSLT(k1, kc), loop, done);

  // C = (accumulate ? C : 0) + tile
  b.SetInsertPoint(done);
  std::vector<llvm::PHINode *> fin;
  for (size_t i = 0; i < acc.size(); ++i) {
    fin.push_back(b.CreatePHI(vec, 2));
    fin.back()->addIncoming(zero, entry);
    fin.back()->addIncoming(next[i], loop);
  }
  llvm::Value *add = b.CreateICmpNE(accumulate, b.getInt64(0));
  for (int r = 0; r < mr; ++r)
    for (int v = 0; v < nv; ++v) {
      llvm::Value *off = b.CreateAdd(b.CreateMul(b.getInt64(r), ldc), b.getInt64(v * t.width));
      llvm::Value *p = b.CreateInBoundsGEP(f32, c, off);
      llvm::Value *old = b.CreateAlignedLoad(vec, p, llvm::Align(4));
      llvm::Value *sum = b.CreateFAdd(old, fin[size_t(r * nv + v)]);
      b.CreateAlignedStore(b.CreateSelect(add, sum, fin[size_t(r * nv + v)]), p, llvm::Align(4));
    }
  b.CreateRetVoid();
}

} // namespace graphc::codegen::cpu
