// tests/gemm_test.cpp - the packed GEMM driver (runtime/rt/graphc_rt.c) and
// the micro-kernel of every vector ISA this CPU executes, against a
// double-precision product.
//
// Random M, N and K in 1..700 mixed with the block edges of each tile (MR,
// NR, the row and column blocks, the depth block), all four transposition
// pairs, padded and tight leading dimensions, the micro-kernel's accumulate
// on and off, and an epilogue that must see every element of C exactly once.
// Every operand and result lies flush against a PROT_NONE page, once at its
// start and once at its end, so a read or write outside it faults instead of
// passing unseen (the packed buffers of the driver have guard pages too).
#include "TestUtil.h"
#include "codegen/cpu/Jit.h"
#include "runtime/rt/graphc_rt.h"

#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

using namespace graphc;
using codegen::cpu::VectorTarget;

namespace {

/// n floats flush against a PROT_NONE page: right after one (Front) or
/// right before one (Back). Filled with NaN.
class Guarded {
public:
  enum Side { Front, Back };
  Guarded(size_t n, Side side) : n_(n) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_t body = std::max<size_t>(page, (n * sizeof(float) + page - 1) / page * page);
    mapped_ = body + 2 * page;
    void *m = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    map_ = static_cast<char *>(m);
    REQUIRE(mprotect(map_, page, PROT_NONE) == 0);
    REQUIRE(mprotect(map_ + page + body, page, PROT_NONE) == 0);
    data_ = side == Front ? reinterpret_cast<float *>(map_ + page)
                          : reinterpret_cast<float *>(map_ + page + body) - n;
    std::fill(data_, data_ + n, NAN);
  }
  ~Guarded() { munmap(map_, mapped_); }
  Guarded(const Guarded &) = delete;
  Guarded &operator=(const Guarded &) = delete;
  float *data() { return data_; }
  float &operator[](size_t i) { return data_[i]; }
  size_t size() const { return n_; }

private:
  char *map_ = nullptr;
  size_t mapped_ = 0, n_;
  float *data_ = nullptr;
};

/// What the test epilogue reads: a bias per column and a visit count per
/// element of C.
struct EpilogueState {
  const float *bias;
  int32_t *visits;
  int64_t n;
};

/// C = relu(C + bias) on the block, counting each element it touches.
void testEpilogue(void **ptrs, int64_t, float *c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0,
                  int64_t j1) {
  auto *e = static_cast<EpilogueState *>(ptrs[0]);
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      float &v = c[i * ldc + j];
      v = std::max(v + e->bias[j], 0.0f);
      __atomic_fetch_add(&e->visits[i * e->n + j], 1, __ATOMIC_RELAXED);
    }
}

/// The micro-kernel of `isa`, JIT-compiled on its own.
struct Micro {
  std::unique_ptr<codegen::cpu::JitModule> jit;
  grt_micro_fn fn = nullptr;
};

Micro compileMicro(const VectorTarget &isa) {
  Micro m;
  auto jit = codegen::cpu::JitModule::compile({}, {}, isa, nullptr);
  INFO((jit ? "" : jit.diag().str()));
  REQUIRE(bool(jit));
  auto fn = (*jit)->lookup("graphc_micro");
  REQUIRE(bool(fn));
  m.fn = reinterpret_cast<grt_micro_fn>(*fn);
  m.jit = std::move(*jit);
  return m;
}

std::vector<VectorTarget> runnableTargets() {
  std::vector<VectorTarget> out;
  for (const VectorTarget &t : codegen::cpu::vectorTargets()) {
    if (codegen::cpu::hostRuns(t))
      out.push_back(t);
    else
      WARN("skipped " << t.name << ": this CPU cannot execute its code");
  }
  return out;
}

struct Case {
  int64_t m, n, k;
  bool transA, transB, epilogue;
  int64_t padA, padB, padC; // extra leading-dimension floats
  Guarded::Side side;
  int64_t kChunk = 0; // grt_gemm's k_chunk: 0, or GRT_BATCH_CHUNK (a sum over samples)
};

/// Runs one case through grt_gemm and checks every element of C, the
/// padding between rows of C, and the epilogue's visits.
void checkCase(grt_pool *pool, const Micro &micro, const VectorTarget &isa, const Case &c,
               std::mt19937 &rng) {
  const int64_t rowsA = c.transA ? c.k : c.m, colsA = c.transA ? c.m : c.k;
  const int64_t rowsB = c.transB ? c.n : c.k, colsB = c.transB ? c.k : c.n;
  const int64_t lda = colsA + c.padA, ldb = colsB + c.padB, ldc = c.n + c.padC;
  Guarded a(size_t(rowsA * lda - c.padA), c.side), b(size_t(rowsB * ldb - c.padB), c.side);
  Guarded out(size_t(c.m * ldc - c.padC), c.side), bias(size_t(c.n), c.side);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < rowsA; ++i)
    for (int64_t j = 0; j < colsA; ++j)
      a[size_t(i * lda + j)] = u(rng);
  for (int64_t i = 0; i < rowsB; ++i)
    for (int64_t j = 0; j < colsB; ++j)
      b[size_t(i * ldb + j)] = u(rng);
  for (size_t j = 0; j < bias.size(); ++j)
    bias[j] = u(rng);
  const float sentinel = 12345.0f; // between rows of C, must stay
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = sentinel;
  std::vector<int32_t> visits(size_t(c.m * c.n), 0);
  EpilogueState state{bias.data(), visits.data(), c.n};
  void *ptrs[1] = {&state};

  grt_gemm(pool, c.m, c.n, c.k, a.data(), lda, c.transA, b.data(), ldb, c.transB, out.data(), ldc,
           micro.fn, isa.mr, isa.nr, isa.aCopies, isa.level, c.epilogue ? testEpilogue : nullptr,
           ptrs, c.m, c.kChunk);

  auto opA = [&](int64_t i, int64_t p) {
    return double(c.transA ? a[size_t(p * lda + i)] : a[size_t(i * lda + p)]);
  };
  auto opB = [&](int64_t p, int64_t j) {
    return double(c.transB ? b[size_t(j * ldb + p)] : b[size_t(p * ldb + j)]);
  };
  std::vector<double> want(size_t(c.m * c.n), 0.0), scale(size_t(c.m * c.n), 0.0);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t p = 0; p < c.k; ++p) {
      double x = opA(i, p);
      for (int64_t j = 0; j < c.n; ++j) {
        double y = opB(p, j);
        want[size_t(i * c.n + j)] += x * y;
        scale[size_t(i * c.n + j)] += std::abs(x * y);
      }
    }
  int64_t bad = 0, badVisits = 0, badPad = 0;
  std::string first;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      size_t e = size_t(i * c.n + j);
      double w = want[e], s = scale[e];
      if (c.epilogue) {
        w = std::max(w + double(bias[size_t(j)]), 0.0);
        s += std::abs(double(bias[size_t(j)]));
        badVisits += visits[e] != 1;
      }
      double got = out[size_t(i * ldc + j)];
      if (!(std::abs(got - w) <= 2e-5 * s + 1e-6)) {
        if (bad++ == 0)
          first = fmt::format("C[{}][{}] = {} but the product is {}", i, j, got, w);
      }
    }
    for (int64_t j = c.n; j < ldc && i + 1 < c.m; ++j)
      badPad += out[size_t(i * ldc + j)] != sentinel;
  }
  INFO(fmt::format("{}: M {} N {} K {} transA {} transB {} epilogue {} lda {} ldb {} ldc {} "
                   "k_chunk {} ({} side of the guard pages)",
                   isa.name, c.m, c.n, c.k, c.transA, c.transB, c.epilogue, lda, ldb, ldc, c.kChunk,
                   c.side == Guarded::Front ? "front" : "back"));
  INFO(first);
  CHECK(bad == 0);
  CHECK(badVisits == 0);
  CHECK(badPad == 0);
}

} // namespace

TEST_CASE("every tile graphc generates blocks into whole tiles", "[gemm]") {
  for (const VectorTarget &t : codegen::cpu::vectorTargets()) {
    INFO(t.name << " tile " << t.mr << "x" << t.nr);
    int64_t mc = 0, nc = 0;
    REQUIRE(grt_gemm_blocking(t.mr, t.nr, &mc, &nc) == 0);
    CHECK(mc % t.mr == 0);
    CHECK(nc % t.nr == 0);
    CHECK(t.nr % t.width == 0);
  }
  int64_t mc = 0, nc = 0;
  CHECK(grt_gemm_blocking(0, 8, &mc, &nc) != 0);
  CHECK(grt_gemm_blocking(4, GRT_MAX_NR + 1, &mc, &nc) != 0);
  // Every tile shape the driver accepts: blocks of whole tiles.
  for (int64_t mr = 1; mr <= GRT_MAX_MR; ++mr)
    for (int64_t nr = 1; nr <= GRT_MAX_NR; nr += 7) {
      REQUIRE(grt_gemm_blocking(mr, nr, &mc, &nc) == 0);
      REQUIRE((mc % mr == 0 && nc % nr == 0 && mc > 0 && nc > 0));
    }
}

TEST_CASE("every micro-kernel this CPU executes matches a double product, accumulate on and "
          "off",
          "[gemm]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  for (const VectorTarget &isa : runnableTargets()) {
    Micro micro = compileMicro(isa);
    for (int64_t kc : {0, 1, 7, 256, 300})
      for (int64_t accumulate : {0, 1})
        for (Guarded::Side side : {Guarded::Front, Guarded::Back}) {
          INFO(isa.name << " kc " << kc << " accumulate " << accumulate);
          const int64_t ldc = isa.nr + 5;
          // A packed as the driver packs it: each value aCopies times.
          const int64_t copies = isa.aCopies;
          Guarded ap(size_t(std::max<int64_t>(kc, 1) * isa.mr * copies), side);
          Guarded bp(size_t(std::max<int64_t>(kc, 1) * isa.nr), side);
          Guarded c(size_t((isa.mr - 1) * ldc + isa.nr), side);
          for (size_t i = 0; i < ap.size(); i += size_t(copies))
            std::fill_n(&ap[i], copies, u(rng));
          for (size_t i = 0; i < bp.size(); ++i)
            bp[i] = u(rng);
          for (size_t i = 0; i < c.size(); ++i)
            c[i] = u(rng);
          std::vector<float> before(c.data(), c.data() + c.size());
          micro.fn(kc, ap.data(), bp.data(), c.data(), ldc, accumulate);
          int64_t bad = 0;
          for (int64_t r = 0; r < isa.mr; ++r) {
            for (int64_t q = 0; q < isa.nr; ++q) {
              double want = accumulate ? before[size_t(r * ldc + q)] : 0.0, scale = 1;
              for (int64_t p = 0; p < kc; ++p) {
                double x =
                    double(ap[size_t((p * isa.mr + r) * copies)]) * bp[size_t(p * isa.nr + q)];
                want += x;
                scale += std::abs(x);
              }
              bad += !(std::abs(c[size_t(r * ldc + q)] - want) <= 2e-6 * scale);
            }
            for (int64_t q = isa.nr; q < ldc && r + 1 < isa.mr; ++q)
              bad += c[size_t(r * ldc + q)] != before[size_t(r * ldc + q)];
          }
          CHECK(bad == 0);
        }
  }
}

TEST_CASE("the GEMM driver matches a double product for random shapes and every block edge, "
          "operands against guard pages",
          "[gemm]") {
  // 14 random shapes per transposition pair; 4 at a reduced size.
  const int cases = test::sized(14, 4);
  const int64_t defaultBudget = grt_gemm_pack_budget(0);
  // One thread, and more threads than cores (tasks claimed in any order).
  for (int threads : {1, 3}) {
    INFO(threads << " threads");
    grt_pool *pool = grt_pool_create(threads);
    REQUIRE(pool);
    std::mt19937 rng(7);
    for (const VectorTarget &isa : runnableTargets()) {
      Micro micro = compileMicro(isa);
      int64_t mc = 0, nc = 0;
      REQUIRE(grt_gemm_blocking(isa.mr, isa.nr, &mc, &nc) == 0);
      std::vector<int64_t> edges{1,          2,          isa.mr - 1, isa.mr, isa.mr + 1,
                                 isa.nr - 1, isa.nr,     isa.nr + 1, mc - 1, mc,
                                 mc + 1,     2 * mc + 1, nc - 1,     nc,     nc + 1,
                                 255,        256,        257,        513,    700};
      edges.erase(
          std::remove_if(edges.begin(), edges.end(), [](int64_t e) { return e < 1 || e > 700; }),
          edges.end());
      std::uniform_int_distribution<size_t> pickEdge(0, edges.size() - 1);
      std::uniform_int_distribution<int64_t> any(1, 700), pad(0, 1);
      auto dim = [&] { return pad(rng) ? edges[pickEdge(rng)] : any(rng); };
      int index = 0;
      for (bool transA : {false, true})
        for (bool transB : {false, true})
          for (int i = 0; i < cases; ++i, ++index) {
            Case c{dim(),  dim(),
                   dim(),  transA,
                   transB, index % 2 == 0,
                   0,      0,
                   0,      index % 3 == 0 ? Guarded::Front : Guarded::Back};
            if (i % 4 == 3) // padded leading dimensions
              c.padA = 1 + pad(rng) * 16, c.padB = 3, c.padC = 5;
            if (i % 3 == 1) // summed by batch chunks in a tree
              c.kChunk = GRT_BATCH_CHUNK;
            // Every other case packs one KC block at a time (the depth in
            // many chunks), the rest all of K at once.
            const int64_t budget = grt_gemm_pack_budget(i % 2 ? 1 : defaultBudget);
            checkCase(pool, micro, isa, c, rng);
            grt_gemm_pack_budget(budget);
          }
      // The seed MLP's shapes at a batch past the row block, and K = 0.
      checkCase(pool, micro, isa, {257, 1000, 1024, false, true, true, 0, 0, 0, Guarded::Back},
                rng);
      checkCase(pool, micro, isa, {1000, 1024, 257, true, false, false, 0, 0, 0, Guarded::Back},
                rng);
      checkCase(pool, micro, isa,
                {1000, 1024, 257, true, false, false, 0, 0, 0, Guarded::Back, GRT_BATCH_CHUNK},
                rng);
      checkCase(pool, micro, isa, {mc + 1, nc + 1, 0, false, false, true, 0, 0, 0, Guarded::Back},
                rng);
    }
    grt_pool_destroy(pool);
  }
}

TEST_CASE("the GEMM driver gives the same bits however much of the depth it packs at once",
          "[gemm]") {
  // One KC block at a time, two, or all of K: each element of C is still
  // summed block after block in one order.
  grt_pool *pool = grt_pool_create(2);
  REQUIRE(pool);
  std::mt19937 rng(11);
  const int64_t saved = grt_gemm_pack_budget(0);
  struct Shape {
    int64_t m, n, k, transA, transB, chunk;
  };
  for (const VectorTarget &isa : runnableTargets()) {
    INFO("isa " << isa.name);
    Micro micro = compileMicro(isa);
    for (const Shape &s : {Shape{130, 300, 1100, 0, 1, 0}, Shape{300, 130, 1100, 1, 0, 0},
                           Shape{70, 90, 1100, 1, 0, GRT_BATCH_CHUNK}}) {
      INFO(s.m << " x " << s.n << " x " << s.k);
      std::uniform_real_distribution<float> u(-1, 1);
      std::vector<float> a(size_t(s.m * s.k)), b(size_t(s.k * s.n));
      for (float &v : a)
        v = u(rng);
      for (float &v : b)
        v = u(rng);
      const int64_t lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n;
      const int64_t widest = std::max((s.n + isa.nr - 1) / isa.nr * isa.nr,
                                      (s.m + isa.mr - 1) / isa.mr * isa.mr * isa.aCopies);
      std::vector<std::vector<float>> got;
      for (int64_t blocks : {1, 2, 1000}) {
        grt_gemm_pack_budget(blocks * 256 * widest * int64_t(sizeof(float)));
        std::vector<float> c(size_t(s.m * s.n));
        grt_gemm(pool, s.m, s.n, s.k, a.data(), lda, s.transA, b.data(), ldb, s.transB, c.data(),
                 s.n, micro.fn, isa.mr, isa.nr, isa.aCopies, isa.level, nullptr, nullptr, s.k,
                 s.chunk);
        got.push_back(std::move(c));
      }
      CHECK(std::memcmp(got[0].data(), got[1].data(), got[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(got[0].data(), got[2].data(), got[0].size() * sizeof(float)) == 0);
    }
  }
  grt_gemm_pack_budget(saved);
  grt_pool_destroy(pool);
}

namespace {

/// op(A)^T B over `rows` samples starting at sample `first`: the weight
/// gradient dW[m, n] = dY[k, m]^T X[k, n] of a share of the batch.
std::vector<float> shareProduct(grt_pool *pool, const Micro &micro, const VectorTarget &isa,
                                const std::vector<float> &dy, const std::vector<float> &x,
                                int64_t m, int64_t n, int64_t first, int64_t rows, int64_t chunk) {
  std::vector<float> c(size_t(m * n));
  grt_gemm(pool, m, n, rows, dy.data() + first * m, m, 1, x.data() + first * n, n, 0, c.data(), n,
           micro.fn, isa.mr, isa.nr, isa.aCopies, isa.level, nullptr, nullptr, rows, chunk);
  return c;
}

} // namespace

TEST_CASE("gradients summed over power-of-two shares of a batch are the whole batch's bits",
          "[gemm][distributed]") {
  // Data parallelism (runtime/Distributed.h) adds the shares' gradients: K
  // processes of batch/K samples each must sum to the bits of one process's
  // batch, or training drifts apart step by step (adagrad amplifies it).
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  grt_pool *pool = grt_pool_create(2);
  REQUIRE(pool);
  const int64_t m = 37, n = 70; // edge tiles in both directions
  for (const VectorTarget &isa : runnableTargets()) {
    Micro micro = compileMicro(isa);
    for (int64_t batch : {256, 512, 128, 300}) {
      std::vector<float> dy(size_t(batch * m)), x(size_t(batch * n));
      for (float &v : dy)
        v = u(rng);
      for (float &v : x)
        v = u(rng);
      const std::vector<float> whole =
          shareProduct(pool, micro, isa, dy, x, m, n, 0, batch, GRT_BATCH_CHUNK);
      std::vector<float> colsWhole(static_cast<size_t>(m));
      grt_colsum(dy.data(), batch, m, colsWhole.data());
      for (int64_t shares : {2, 4}) {
        // Shares of whole chunks, a power of two of them; depth blocks of
        // 256 samples add in order, so 4 shares need a block per pair.
        if (batch % (shares * GRT_BATCH_CHUNK) != 0 || (shares == 4 && batch != 512))
          continue;
        INFO(isa.name << ": batch " << batch << " in " << shares << " shares");
        const int64_t each = batch / shares;
        std::vector<std::vector<float>> part, cols;
        for (int64_t s = 0; s < shares; ++s) {
          part.push_back(
              shareProduct(pool, micro, isa, dy, x, m, n, s * each, each, GRT_BATCH_CHUNK));
          cols.emplace_back(size_t(m));
          grt_colsum(dy.data() + s * each * m, each, m, cols.back().data());
        }
        // The shares added as a ring of two, or as pairs of pairs.
        auto combine = [&](const std::vector<std::vector<float>> &p, size_t i) {
          return shares == 2 ? p[0][i] + p[1][i] : (p[0][i] + p[1][i]) + (p[2][i] + p[3][i]);
        };
        int64_t differ = 0, colsDiffer = 0;
        for (size_t i = 0; i < whole.size(); ++i)
          differ += combine(part, i) != whole[i];
        for (size_t i = 0; i < colsWhole.size(); ++i)
          colsDiffer += combine(cols, i) != colsWhole[i];
        CHECK(differ == 0);
        CHECK(colsDiffer == 0);
      }
      // Against a double sum: the tree is still the product.
      int64_t bad = 0;
      for (int64_t i = 0; i < m; ++i) {
        double colWant = 0, colScale = 0;
        for (int64_t p = 0; p < batch; ++p) {
          colWant += dy[size_t(p * m + i)];
          colScale += std::abs(dy[size_t(p * m + i)]);
        }
        bad += !(std::abs(colsWhole[size_t(i)] - colWant) <= 1e-5 * colScale + 1e-6);
        for (int64_t j = 0; j < n; ++j) {
          double want = 0, scale = 0;
          for (int64_t p = 0; p < batch; ++p) {
            double t = double(dy[size_t(p * m + i)]) * x[size_t(p * n + j)];
            want += t;
            scale += std::abs(t);
          }
          bad += !(std::abs(whole[size_t(i * n + j)] - want) <= 1e-5 * scale + 1e-6);
        }
      }
      CHECK(bad == 0);
    }
  }
  grt_pool_destroy(pool);
}
