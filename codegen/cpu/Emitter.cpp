// codegen/cpu/Emitter.cpp - loops, index arithmetic and pointwise math in IR.
#include "codegen/cpu/Emitter.h"

#include "ir/Elementwise.h"
#include "ir/Random.h"

#include <llvm/IR/Intrinsics.h>

namespace graphc::codegen::cpu {

using namespace ir;

Emitter::Emitter(llvm::Module &m, const Graph &graph, const std::vector<bool> &st)
    : b(m.getContext()), mod(m), g(graph), stored(st) {}

llvm::Function *Emitter::begin(const std::string &name, const std::vector<llvm::Type *> &extra) {
  std::vector<llvm::Type *> params{b.getPtrTy(), b.getInt64Ty()};
  params.insert(params.end(), extra.begin(), extra.end());
  auto *ft = llvm::FunctionType::get(b.getVoidTy(), params, false);
  fn_ = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, mod);
  fn_->addFnAttr(llvm::Attribute::NoUnwind);
  for (unsigned i = 0; i < fn_->arg_size(); ++i)
    if (params[i]->isPointerTy())
      fn_->addParamAttr(i, llvm::Attribute::NoAlias);
  entry_ = llvm::BasicBlock::Create(mod.getContext(), "entry", fn_);
  auto *body = llvm::BasicBlock::Create(mod.getContext(), "body", fn_);
  b.SetInsertPoint(entry_);
  b.CreateBr(body);
  b.SetInsertPoint(body);
  buffers_.clear();
  return fn_;
}

void Emitter::finish() {
  b.CreateRetVoid();
  fn_ = nullptr;
}

llvm::Value *Emitter::buffer(ValueId v) {
  auto it = buffers_.find(v);
  if (it != buffers_.end())
    return it->second;
  GRAPHC_CHECK(stored[size_t(v)], "value %{} has no buffer", v);
  llvm::IRBuilder<> eb(entry_->getTerminator());
  llvm::Value *slotPtr = eb.CreateConstInBoundsGEP1_64(eb.getPtrTy(), fn_->getArg(0), uint64_t(v));
  llvm::Value *p = eb.CreateLoad(eb.getPtrTy(), slotPtr, "buf" + std::to_string(v));
  buffers_[v] = p;
  return p;
}

llvm::Value *Emitter::slot(llvm::Type *t, const std::string &name, unsigned count) {
  llvm::IRBuilder<> eb(entry_->getTerminator());
  return eb.CreateAlloca(t, count > 1 ? eb.getInt64(count) : nullptr, name);
}

llvm::Value *Emitter::numel(const Shape &s) {
  llvm::Value *r = i64(1);
  int64_t fixed = 1;
  for (int64_t d : s) {
    if (d == kBatch)
      r = b.CreateMul(r, n());
    else
      fixed *= d;
  }
  return fixed == 1 ? r : b.CreateMul(r, i64(fixed));
}

void Emitter::loop(llvm::Value *lo, llvm::Value *hi, const std::function<void(llvm::Value *)> &body,
                   bool parallel, bool whole) {
  llvm::LLVMContext &c = mod.getContext();
  llvm::Function *f = b.GetInsertBlock()->getParent();
  llvm::BasicBlock *pre = b.GetInsertBlock();
  auto *head = llvm::BasicBlock::Create(c, "loop", f);
  auto *bodyBB = llvm::BasicBlock::Create(c, "loop.body", f);
  auto *exit = llvm::BasicBlock::Create(c, "loop.exit", f);
  const size_t blocksBefore = f->size(); // the body's own blocks are appended after
  b.CreateBr(head);
  b.SetInsertPoint(head);
  llvm::PHINode *i = b.CreatePHI(b.getInt64Ty(), 2, "i");
  i->addIncoming(lo, pre);
  b.CreateCondBr(b.CreateICmpSLT(i, hi), bodyBB, exit);
  b.SetInsertPoint(bodyBB);
  body(i);
  llvm::Value *next = b.CreateAdd(i, i64(1), "", true, true);
  i->addIncoming(next, b.GetInsertBlock());
  llvm::Instruction *latch = b.CreateBr(head);
  if (parallel) {
    // Every access of the body, nested loops' included, joins one access
    // group, and the loop declares the group free of loop-carried
    // dependences (LLVM LangRef, llvm.loop.parallel_accesses).
    llvm::MDNode *group = llvm::MDNode::getDistinct(c, {});
    auto tag = [&](llvm::BasicBlock &bb) {
      for (llvm::Instruction &in : bb)
        if (in.mayReadOrWriteMemory())
          in.setMetadata(llvm::LLVMContext::MD_access_group, group);
    };
    tag(*bodyBB);
    size_t index = 0;
    for (llvm::BasicBlock &bb : *f)
      if (index++ >= blocksBefore)
        tag(bb);
    llvm::Metadata *parallelAccesses[] = {llvm::MDString::get(c, "llvm.loop.parallel_accesses"),
                                          group};
    std::vector<llvm::Metadata *> loopOps{nullptr, llvm::MDNode::get(c, parallelAccesses)};
    if (whole)
      loopOps.push_back(llvm::MDNode::get(c, {llvm::MDString::get(c, "llvm.loop.unroll.disable")}));
    llvm::MDNode *loopId = llvm::MDNode::getDistinct(c, loopOps);
    loopId->replaceOperandWith(0, loopId);
    latch->setMetadata(llvm::LLVMContext::MD_loop, loopId);
  }
  b.SetInsertPoint(exit);
}

void Emitter::ifThen(llvm::Value *cond, const std::function<void()> &body) {
  llvm::LLVMContext &c = mod.getContext();
  llvm::Function *f = b.GetInsertBlock()->getParent();
  auto *then = llvm::BasicBlock::Create(c, "then", f);
  auto *done = llvm::BasicBlock::Create(c, "endif", f);
  b.CreateCondBr(cond, then, done);
  b.SetInsertPoint(then);
  body();
  b.CreateBr(done);
  b.SetInsertPoint(done);
}

std::vector<llvm::Value *> Emitter::unravel(const Shape &s, llvm::Value *e) {
  std::vector<llvm::Value *> idx(s.size());
  for (int d = int(s.size()) - 1; d >= 0; --d) {
    if (d == 0) {
      idx[0] = e;
      break;
    }
    llvm::Value *size = dim(s[size_t(d)]);
    idx[size_t(d)] = b.CreateURem(e, size);
    e = b.CreateUDiv(e, size);
  }
  return idx;
}

llvm::Value *Emitter::ravel(const Shape &s, const std::vector<llvm::Value *> &idx) {
  llvm::Value *r = i64(0);
  for (size_t d = 0; d < s.size(); ++d)
    r = b.CreateAdd(b.CreateMul(r, dim(s[d])), idx[d]);
  return r;
}

llvm::Value *Emitter::broadcastIndex(const Shape &to, const Shape &from, llvm::Value *e) {
  if (from == to)
    return e;
  int64_t fromNumel = 1;
  bool symbolic = false;
  for (int64_t d : from) {
    symbolic |= d == kBatch;
    fromNumel *= d == kBatch ? 1 : d;
  }
  if (!symbolic && fromNumel == 1)
    return i64(0);
  // A trailing block: [C] against [..., C] is e mod C.
  size_t lead = to.size() - from.size();
  bool trailing = !symbolic;
  for (size_t i = 0; i < from.size(); ++i)
    trailing &= from[i] == to[lead + i];
  if (trailing)
    return b.CreateURem(e, i64(fromNumel));
  auto idx = unravel(to, e);
  std::vector<llvm::Value *> src;
  for (size_t i = 0; i < from.size(); ++i)
    src.push_back(from[i] == 1 && to[lead + i] != 1 ? i64(0) : idx[lead + i]);
  return ravel(from, src);
}

llvm::Value *Emitter::load(ValueId v, llvm::Value *index) {
  if (g.type(v).dtype == DType::I32)
    return b.CreateSIToFP(loadI32(v, index), b.getFloatTy());
  llvm::Value *p = b.CreateInBoundsGEP(b.getFloatTy(), buffer(v), index);
  return b.CreateLoad(b.getFloatTy(), p);
}

llvm::Value *Emitter::loadI32(ValueId v, llvm::Value *index) {
  llvm::Value *p = b.CreateInBoundsGEP(b.getInt32Ty(), buffer(v), index);
  return b.CreateLoad(b.getInt32Ty(), p);
}

void Emitter::store(ValueId v, llvm::Value *index, llvm::Value *x) {
  if (g.type(v).dtype == DType::I32) {
    llvm::Value *p = b.CreateInBoundsGEP(b.getInt32Ty(), buffer(v), index);
    b.CreateStore(b.CreateFPToSI(x, b.getInt32Ty()), p);
    return;
  }
  llvm::Value *p = b.CreateInBoundsGEP(b.getFloatTy(), buffer(v), index);
  b.CreateStore(x, p);
}

llvm::Value *Emitter::external(ValueId v, const Shape &domain, llvm::Value *e) {
  const Node &nd = g.node(v);
  if (nd.op == Op::Constant)
    return f32(nd.attrs.f("value"));
  if (nd.op == Op::BatchSize)
    return b.CreateSIToFP(dim(g.type(nd.inputs[0]).shape[0]), b.getFloatTy());
  return load(v, broadcastIndex(domain, nd.type.shape, e));
}

llvm::Value *Emitter::operandOf(ValueId user, ValueId v, const Shape &domain, llvm::Value *e) {
  const Node &u = g.node(user);
  if (u.op == Op::OneHot)
    return load(v, b.CreateUDiv(e, i64(u.attrs.i("classes"))));
  return external(v, domain, e);
}

llvm::Value *Emitter::call(llvm::Intrinsic::ID id, llvm::Value *x) {
  llvm::Function *f = llvm::Intrinsic::getDeclaration(&mod, id, {x->getType()});
  return b.CreateCall(f, {x});
}

llvm::Value *Emitter::maxf(llvm::Value *a, llvm::Value *c) {
  // a > c ? a : c, NaN-propagating like the interpreter's std::max(c, a)
  return b.CreateSelect(b.CreateFCmpOGT(a, c), a, c);
}

namespace {

/// SplitMix64's finaliser in IR, matching graphc_mix64 (ir/graphc_random.h).
llvm::Value *mix64(llvm::IRBuilder<> &b, llvm::Value *z) {
  z = b.CreateMul(b.CreateXor(z, b.CreateLShr(z, 30)), b.getInt64(GRAPHC_MIX64_M1));
  z = b.CreateMul(b.CreateXor(z, b.CreateLShr(z, 27)), b.getInt64(GRAPHC_MIX64_M2));
  return b.CreateXor(z, b.CreateLShr(z, 31));
}

/// ir/Elementwise.h's algebra as float LLVM IR.
struct LlvmAlgebra {
  using V = llvm::Value *;
  Emitter &em;
  V lit(double x) { return em.f32(x); }
  V add(V a, V c) { return em.b.CreateFAdd(a, c); }
  V sub(V a, V c) { return em.b.CreateFSub(a, c); }
  V mul(V a, V c) { return em.b.CreateFMul(a, c); }
  V div(V a, V c) { return em.b.CreateFDiv(a, c); }
  V pow(V a, V c) {
    llvm::Function *f =
        llvm::Intrinsic::getDeclaration(&em.mod, llvm::Intrinsic::pow, {a->getType()});
    return em.b.CreateCall(f, {a, c});
  }
  V neg(V a) { return em.b.CreateFNeg(a); }
  V exp(V a) { return em.call(llvm::Intrinsic::exp, a); }
  V log(V a) { return em.call(llvm::Intrinsic::log, a); }
  V sqrt(V a) { return em.call(llvm::Intrinsic::sqrt, a); }
  // tanh(x) = 1 - 2 / (exp(2x) + 1): exact at both tails, no overflow NaN.
  V tanh(V a) { return sub(lit(1), div(lit(2), add(exp(mul(a, lit(2))), lit(1)))); }
  V greater(V a, V c, V x, V y) { return em.b.CreateSelect(em.b.CreateFCmpOGT(a, c), x, y); }
  V less(V a, V c, V x, V y) { return em.b.CreateSelect(em.b.CreateFCmpOLT(a, c), x, y); }
  V nonzero(V c, V x, V y) { return em.b.CreateSelect(em.b.CreateFCmpUNE(c, lit(0)), x, y); }
};

} // namespace

llvm::Value *Emitter::pointwise(ValueId v, const std::vector<llvm::Value *> &in, llvm::Value *e) {
  const Node &nd = g.node(v);
  if (ir::isElementwiseMath(nd.op)) {
    LlvmAlgebra s{*this};
    return ir::elementwise(s, nd.op, in.data());
  }
  auto one = f32(1.0);
  switch (nd.op) {
  case Op::Cast:
    if (nd.type.dtype == DType::I32)
      return b.CreateSIToFP(b.CreateFPToSI(in[0], b.getInt32Ty()), b.getFloatTy());
    return in[0];
  case Op::Broadcast: return in[0];
  case Op::OneHot: {
    int64_t c = nd.attrs.i("classes");
    llvm::Value *col = b.CreateSIToFP(b.CreateURem(e, i64(c)), b.getFloatTy());
    return b.CreateSelect(b.CreateFCmpOEQ(in[0], col), one, f32(0));
  }
  case Op::ConstTensor: { // element e of a private constant array
    std::vector<float> values;
    for (double x : nd.attrs.floats("values"))
      values.push_back(float(x));
    llvm::Constant *init = llvm::ConstantDataArray::get(mod.getContext(), values);
    auto *table =
        new llvm::GlobalVariable(mod, init->getType(), true, llvm::GlobalValue::PrivateLinkage,
                                 init, fmt::format("const_tensor.{}", v));
    llvm::Value *p = b.CreateInBoundsGEP(b.getFloatTy(), table, e);
    return b.CreateLoad(b.getFloatTy(), p);
  }
  case Op::RandomMask: {
    // ir::dropoutMask(seed, salt, e, p), bit for bit (graphc_uniform01).
    llvm::Value *seed = b.CreateSExt(loadI32(nd.inputs[0], i64(0)), b.getInt64Ty());
    uint64_t salt = graphc_salt_key(uint64_t(nd.attrs.i("salt")));
    llvm::Value *h =
        b.CreateAdd(b.CreateMul(seed, i64(int64_t(GRAPHC_SEED_MUL))), i64(int64_t(salt)));
    llvm::Value *at = e;
    if (nd.inputs.size() == 2) { // element e + offset * (elements per sample)
      int64_t perSample = 1;
      for (size_t d = 1; d < nd.type.shape.size(); ++d)
        perSample *= nd.type.shape[d];
      llvm::Value *offset = b.CreateSExt(loadI32(nd.inputs[1], i64(0)), b.getInt64Ty());
      at = b.CreateAdd(e, b.CreateMul(offset, i64(perSample)));
    }
    h = mix64(b, b.CreateAdd(h, at));
    llvm::Value *u =
        b.CreateFMul(b.CreateUIToFP(b.CreateLShr(h, 40), b.getFloatTy()), f32(1.0 / 16777216.0));
    float p = float(nd.attrs.f("p"));
    return b.CreateSelect(b.CreateFCmpOLT(u, f32(p)), f32(0), f32(1.0f / (1.0f - p)));
  }
  default: break;
  }
  GRAPHC_CHECK(false, "{} is not pointwise", opName(nd.op));
  return nullptr;
}

} // namespace graphc::codegen::cpu
