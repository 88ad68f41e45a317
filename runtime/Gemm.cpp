// runtime/Gemm.cpp - packing, cache blocking and the parallel tile loop.
#include "runtime/Gemm.h"

#include "runtime/ThreadPool.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace graphc::runtime {
namespace {

constexpr int64_t kKC = 256; // depth: a kc x NR panel of B stays in L1
constexpr int64_t kMC = 96;  // rows of A per task (a multiple of MR for 6, 8, 4)
constexpr int64_t kNC = 384; // columns of C per task

struct AlignedBuffer {
  float *p = nullptr;
  size_t n = 0;
  void reserve(size_t count) {
    if (count <= n)
      return;
    std::free(p);
    n = count;
    p = static_cast<float *>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
  }
  ~AlignedBuffer() { std::free(p); }
};

/// Rows [i0, i0+mc) x depth [p0, p0+kc) of op(A), MR-row slivers, k-major,
/// zero-padded to whole slivers.
void packA(const GemmShape &s, int mr, int64_t i0, int64_t mc, int64_t p0,
           int64_t kc, float *dst) {
  for (int64_t is = 0; is < mc; is += mr) {
    int64_t rows = std::min<int64_t>(mr, mc - is);
    for (int64_t p = 0; p < kc; ++p) {
      float *d = dst + is * kc + p * mr;
      if (!s.transA) {
        for (int64_t r = 0; r < rows; ++r)
          d[r] = s.a[(i0 + is + r) * s.lda + p0 + p];
      } else {
        const float *src = s.a + (p0 + p) * s.lda + i0 + is;
        std::memcpy(d, src, size_t(rows) * sizeof(float));
      }
      for (int64_t r = rows; r < mr; ++r)
        d[r] = 0;
    }
  }
}

/// Columns [j0, j0+nc) x depth [p0, p0+kc) of op(B) as NR-column panels.
void packB(const GemmShape &s, int nr, int64_t j0, int64_t nc, int64_t p0,
           int64_t kc, float *dst) {
  for (int64_t js = 0; js < nc; js += nr) {
    int64_t cols = std::min<int64_t>(nr, nc - js);
    for (int64_t p = 0; p < kc; ++p) {
      float *d = dst + js * kc + p * nr;
      if (!s.transB) {
        std::memcpy(d, s.b + (p0 + p) * s.ldb + j0 + js, size_t(cols) * sizeof(float));
      } else {
        for (int64_t c = 0; c < cols; ++c)
          d[c] = s.b[(j0 + js + c) * s.ldb + p0 + p];
      }
      for (int64_t c = cols; c < nr; ++c)
        d[c] = 0;
    }
  }
}

struct Scratch {
  AlignedBuffer a, b, tile;
};

} // namespace

void gemm(const GemmShape &s, const GemmKernel &k, ThreadPool &pool) {
  if (s.m <= 0 || s.n <= 0)
    return;
  const int mr = k.mr, nr = k.nr;
  const int64_t mBlocks = (s.m + kMC - 1) / kMC, nBlocks = (s.n + kNC - 1) / kNC;
  static thread_local Scratch scratch;

  pool.run(mBlocks * nBlocks, [&](int64_t task, int) {
    Scratch &sc = scratch;
    const int64_t i0 = (task / nBlocks) * kMC, j0 = (task % nBlocks) * kNC;
    const int64_t mc = std::min(kMC, s.m - i0), nc = std::min(kNC, s.n - j0);
    const int64_t mcPad = (mc + mr - 1) / mr * mr, ncPad = (nc + nr - 1) / nr * nr;
    sc.a.reserve(size_t(mcPad * kKC));
    sc.b.reserve(size_t(ncPad * kKC));
    sc.tile.reserve(size_t(mr * nr));
    if (s.k == 0)
      for (int64_t i = 0; i < mc; ++i)
        std::memset(s.c + (i0 + i) * s.ldc + j0, 0, size_t(nc) * sizeof(float));
    for (int64_t p0 = 0; p0 < s.k; p0 += kKC) {
      const int64_t kc = std::min(kKC, s.k - p0);
      const int64_t acc = p0 > 0;
      packB(s, nr, j0, nc, p0, kc, sc.b.p);
      packA(s, mr, i0, mc, p0, kc, sc.a.p);
      for (int64_t js = 0; js < nc; js += nr) {
        const int64_t cols = std::min<int64_t>(nr, nc - js);
        for (int64_t is = 0; is < mc; is += mr) {
          const int64_t rows = std::min<int64_t>(mr, mc - is);
          float *c = s.c + (i0 + is) * s.ldc + j0 + js;
          const float *ap = sc.a.p + is * kc, *bp = sc.b.p + js * kc;
          if (rows == mr && cols == nr) {
            k.micro(kc, ap, bp, c, s.ldc, acc);
            continue;
          }
          k.micro(kc, ap, bp, sc.tile.p, nr, 0);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q)
              c[r * s.ldc + q] = (acc ? c[r * s.ldc + q] : 0.0f) + sc.tile.p[r * nr + q];
        }
      }
    }
    if (k.epilogue)
      k.epilogue(k.ptrs, k.batch, s.c, s.ldc, i0, i0 + mc, j0, j0 + nc);
  });
}

} // namespace graphc::runtime
