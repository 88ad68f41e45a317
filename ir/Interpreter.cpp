// ir/Interpreter.cpp - plain double-precision evaluation of every op.
#include "ir/Interpreter.h"

#include "ir/Elementwise.h"
#include "ir/Printer.h"
#include "ir/Random.h"
#include "ir/ShapeInference.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace graphc::ir {
namespace {

std::vector<int64_t> strides(const Shape &s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = int(s.size()) - 2; i >= 0; --i)
    st[size_t(i)] = st[size_t(i) + 1] * s[size_t(i) + 1];
  return st;
}

/// For each element of `out` (row-major), the index of the element of a
/// tensor of shape `in` that broadcasts to it.
std::vector<int64_t> broadcastMap(const Shape &in, const Shape &out) {
  Shape padded(out.size() - in.size(), 1);
  padded.insert(padded.end(), in.begin(), in.end());
  auto ist = strides(padded);
  int64_t total = 1;
  for (int64_t d : out)
    total *= d;
  std::vector<int64_t> map(static_cast<size_t>(total));
  std::vector<int64_t> idx(out.size(), 0);
  for (int64_t e = 0; e < total; ++e) {
    int64_t src = 0;
    for (size_t d = 0; d < out.size(); ++d)
      if (padded[d] != 1)
        src += idx[d] * ist[d];
    map[size_t(e)] = src;
    for (int d = int(out.size()) - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < out[size_t(d)])
        break;
      idx[size_t(d)] = 0;
    }
  }
  return map;
}

} // namespace

namespace {

/// ir/Elementwise.h's algebra in double precision.
struct DoubleAlgebra {
  using V = double;
  V lit(double x) { return x; }
  V add(V a, V b) { return a + b; }
  V sub(V a, V b) { return a - b; }
  V mul(V a, V b) { return a * b; }
  V div(V a, V b) { return a / b; }
  V pow(V a, V b) { return std::pow(a, b); }
  V neg(V a) { return -a; }
  V exp(V a) { return std::exp(a); }
  V log(V a) { return std::log(a); }
  V sqrt(V a) { return std::sqrt(a); }
  V tanh(V a) { return std::tanh(a); }
  V greater(V a, V b, V x, V y) { return a > b ? x : y; }
  V less(V a, V b, V x, V y) { return a < b ? x : y; }
  V nonzero(V c, V x, V y) { return c != 0 ? x : y; }
};

} // namespace

double evalElementwise(Op op, const double *in) {
  DoubleAlgebra s;
  return elementwise(s, op, in);
}

namespace {

/// Reduction over `axes` (all when empty) of `x`, combining with `f` from `init`.
template <class F>
Tensor reduce(const Tensor &x, std::vector<int64_t> axes, bool keep, const Shape &outShape,
              double init, F f) {
  int rank = int(x.shape.size());
  for (int64_t &a : axes)
    if (a < 0)
      a += rank;
  std::vector<bool> reduced(size_t(rank), axes.empty());
  for (int64_t a : axes)
    reduced[size_t(a)] = true;
  Shape kept;
  for (int i = 0; i < rank; ++i)
    kept.push_back(reduced[size_t(i)] ? 1 : x.shape[size_t(i)]);
  Tensor out(outShape, init);
  auto kst = strides(kept);
  std::vector<int64_t> idx(size_t(rank), 0);
  for (int64_t e = 0; e < x.numel(); ++e) {
    int64_t dst = 0;
    for (int d = 0; d < rank; ++d)
      if (!reduced[size_t(d)])
        dst += idx[size_t(d)] * kst[size_t(d)];
    out.data[size_t(dst)] = f(out.data[size_t(dst)], x.data[size_t(e)]);
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < x.shape[size_t(d)])
        break;
      idx[size_t(d)] = 0;
    }
  }
  (void)keep;
  return out;
}

struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
};

Window window(const Attrs &a, int64_t kh, int64_t kw) {
  auto st = a.ints("stride", {1, 1}), pad = a.ints("pad", {0, 0});
  return {kh, kw, st[0], st[1], pad[0], pad[1]};
}

// The convolutions compute each element as one sum in double over its
// taps, in the order of the loops n, o, c, oy, ox, ky, kx of the
// definition (a scatter over every tap): the same bits as that scatter,
// gathered per element so that the suites comparing against this run
// several times faster.

/// Output positions [lo, hi) of a window (k taps, stride s, pad p, `size`
/// positions) whose taps cover input position i.
std::pair<int64_t, int64_t> covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t size) {
  const int64_t first = i + p - k + 1; // the lowest o * s
  const int64_t lo = first <= 0 ? 0 : (first + s - 1) / s;
  const int64_t hi = std::min(size, (i + p) / s + 1);
  return {lo, std::max(lo, hi)};
}

/// y [N,O,Ho,Wo] = x [N,C,H,W] cross-correlated with w [O,C,kh,kw]; each
/// element summed over (c, ky, kx) in order.
void conv2d(const Tensor &x, const Tensor &w, const Window &win, Tensor &y) {
  const Shape &xs = x.shape, &ys = y.shape;
  const int64_t C = xs[1], H = xs[2], W = xs[3];
  double *out = y.data.data();
  for (int64_t b = 0; b < ys[0]; ++b)
    for (int64_t o = 0; o < ys[1]; ++o)
      for (int64_t oy = 0; oy < ys[2]; ++oy)
        for (int64_t ox = 0; ox < ys[3]; ++ox) {
          double s = 0;
          for (int64_t c = 0; c < C; ++c) {
            const double *xc = x.data.data() + (b * C + c) * H * W;
            const double *wc = w.data.data() + (o * C + c) * win.kh * win.kw;
            for (int64_t ky = 0; ky < win.kh; ++ky) {
              const int64_t iy = oy * win.sh - win.ph + ky;
              if (iy < 0 || iy >= H)
                continue;
              for (int64_t kx = 0; kx < win.kw; ++kx) {
                const int64_t ix = ox * win.sw - win.pw + kx;
                if (ix >= 0 && ix < W)
                  s += xc[iy * W + ix] * wc[ky * win.kw + kx];
              }
            }
          }
          *out++ = s;
        }
}

/// gx [N,C,H,W], the gradient of conv2d's input from gy [N,O,Ho,Wo] and w;
/// each element summed over (o, oy, ox) in order.
void conv2dGradInput(const Tensor &gy, const Tensor &w, const Window &win, Tensor &gx) {
  const Shape &xs = gx.shape, &ys = gy.shape;
  const int64_t C = xs[1], O = ys[1], Ho = ys[2], Wo = ys[3];
  double *out = gx.data.data();
  for (int64_t b = 0; b < xs[0]; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t iy = 0; iy < xs[2]; ++iy) {
        const auto [ylo, yhi] = covering(iy, win.kh, win.sh, win.ph, Ho);
        for (int64_t ix = 0; ix < xs[3]; ++ix) {
          const auto [xlo, xhi] = covering(ix, win.kw, win.sw, win.pw, Wo);
          double s = 0;
          for (int64_t o = 0; o < O; ++o) {
            const double *g = gy.data.data() + (b * O + o) * Ho * Wo;
            const double *wc = w.data.data() + (o * C + c) * win.kh * win.kw;
            for (int64_t oy = ylo; oy < yhi; ++oy) {
              const int64_t ky = iy + win.ph - oy * win.sh;
              for (int64_t ox = xlo; ox < xhi; ++ox)
                s += g[oy * Wo + ox] * wc[ky * win.kw + (ix + win.pw - ox * win.sw)];
            }
          }
          *out++ = s;
        }
      }
}

/// gw [O,C,kh,kw], the gradient of conv2d's weight from x and gy; each
/// element summed over (n, oy, ox) in order.
void conv2dGradWeight(const Tensor &x, const Tensor &gy, const Window &win, Tensor &gw) {
  const Shape &xs = x.shape, &ys = gy.shape;
  const int64_t C = xs[1], H = xs[2], W = xs[3], O = ys[1], Ho = ys[2], Wo = ys[3];
  double *out = gw.data.data();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ky = 0; ky < win.kh; ++ky)
        for (int64_t kx = 0; kx < win.kw; ++kx) {
          double s = 0;
          for (int64_t b = 0; b < xs[0]; ++b) {
            const double *g = gy.data.data() + (b * O + o) * Ho * Wo;
            const double *xc = x.data.data() + (b * C + c) * H * W;
            for (int64_t oy = 0; oy < Ho; ++oy) {
              const int64_t iy = oy * win.sh - win.ph + ky;
              if (iy < 0 || iy >= H)
                continue;
              for (int64_t ox = 0; ox < Wo; ++ox) {
                const int64_t ix = ox * win.sw - win.pw + kx;
                if (ix >= 0 && ix < W)
                  s += g[oy * Wo + ox] * xc[iy * W + ix];
              }
            }
          }
          *out++ = s;
        }
}

/// Index in x [N,C,H,W] of the first maximum of each pooling window.
std::vector<int64_t> poolArgmax(const Tensor &x, const Shape &y, const Window &w) {
  std::vector<int64_t> arg;
  const Shape &s = x.shape;
  for (int64_t n = 0; n < y[0]; ++n)
    for (int64_t c = 0; c < y[1]; ++c)
      for (int64_t oy = 0; oy < y[2]; ++oy)
        for (int64_t ox = 0; ox < y[3]; ++ox) {
          int64_t best = -1;
          double bv = -std::numeric_limits<double>::infinity();
          for (int64_t ky = 0; ky < w.kh; ++ky)
            for (int64_t kx = 0; kx < w.kw; ++kx) {
              int64_t iy = oy * w.sh - w.ph + ky, ix = ox * w.sw - w.pw + kx;
              if (iy < 0 || iy >= s[2] || ix < 0 || ix >= s[3])
                continue;
              int64_t i = ((n * s[1] + c) * s[2] + iy) * s[3] + ix;
              if (best < 0 || x.data[size_t(i)] > bv) {
                best = i;
                bv = x.data[size_t(i)];
              }
            }
          arg.push_back(best);
        }
  return arg;
}

class Evaluator {
public:
  Evaluator(const Graph &g) : g_(g), vals_(size_t(g.size())) {}

  Expected<std::vector<Tensor>> run(const Bindings &inputs) {
    if (auto s = findBatch(inputs); !s)
      return s.diag();
    for (ValueId v = 0; v < g_.size(); ++v) {
      auto s = eval(v, inputs);
      if (!s)
        return s.diag();
    }
    return std::move(vals_);
  }

private:
  Status findBatch(const Bindings &inputs) {
    for (ValueId v : g_.inputs()) {
      const Node &n = g_.node(v);
      std::string name = n.attrs.s("name");
      auto it = inputs.find(name);
      if (it == inputs.end())
        return error(fmt::format("no value for input '{}'", name));
      if (n.type.batched()) {
        if (it->second.shape.empty())
          return error(fmt::format("input '{}' must be batched", name));
        int64_t b = it->second.shape[0];
        if (batch_ >= 0 && b != batch_)
          return error(fmt::format("input '{}' has batch size {}, others {}", name, b, batch_));
        batch_ = b;
      }
    }
    if (batch_ < 0)
      batch_ = 1;
    return {};
  }

  const Tensor &in(const Node &n, size_t i) { return vals_[size_t(n.inputs[i])]; }

  Status eval(ValueId v, const Bindings &inputs) {
    const Node &n = g_.node(v);
    Shape shape = concrete(n.type.shape, batch_);
    Tensor &out = vals_[size_t(v)];
    const Attrs &a = n.attrs;
    if (isElementwiseMath(n.op)) {
      const size_t arity = n.inputs.size();
      std::vector<std::vector<int64_t>> maps;
      for (size_t i = 0; i < arity; ++i)
        maps.push_back(broadcastMap(in(n, i).shape, shape));
      out = Tensor(shape);
      double operands[3];
      for (size_t e = 0; e < out.data.size(); ++e) {
        for (size_t i = 0; i < arity; ++i)
          operands[i] = in(n, i).data[size_t(maps[i][e])];
        out.data[e] = evalElementwise(n.op, operands);
      }
      return {};
    }
    switch (n.op) {
    case Op::Input: {
      const Tensor &t = inputs.at(a.s("name"));
      if (t.shape != shape)
        return error(fmt::format("input '{}' has shape {}, the graph expects {}", a.s("name"),
                                 str(t.shape), str(n.type.shape)));
      out = t;
      return {};
    }
    case Op::Constant: out = Tensor(shape, a.f("value")); return {};
    case Op::ConstTensor: {
      out = Tensor(shape);
      auto values = a.floats("values");
      std::copy(values.begin(), values.end(), out.data.begin());
      return {};
    }
    case Op::Param: {
      out = Tensor(shape);
      int64_t off = a.i("offset");
      std::copy_n(in(n, 0).data.begin() + off, out.numel(), out.data.begin());
      return {};
    }
    case Op::RandomMask: {
      out = Tensor(shape);
      uint64_t seed = uint64_t(int64_t(in(n, 0).data[0]));
      // With a sample offset o, element i of this batch is element
      // i + o * (elements per sample) of the global batch.
      uint64_t base = 0;
      if (n.inputs.size() == 2)
        base = uint64_t(int64_t(in(n, 1).data[0])) * uint64_t(out.numel() / std::max<int64_t>(shape[0], 1));
      for (int64_t i = 0; i < out.numel(); ++i)
        out.data[size_t(i)] =
            dropoutMask(seed, uint64_t(a.i("salt")), base + uint64_t(i), float(a.f("p")));
      return {};
    }
    case Op::Reshape:
      out = in(n, 0);
      out.shape = shape;
      return {};
    case Op::Transpose: {
      const Tensor &x = in(n, 0);
      auto perm = a.ints("perm");
      auto xst = strides(x.shape);
      out = Tensor(shape);
      std::vector<int64_t> idx(shape.size(), 0);
      for (int64_t e = 0; e < out.numel(); ++e) {
        int64_t src = 0;
        for (size_t d = 0; d < shape.size(); ++d)
          src += idx[d] * xst[size_t(perm[d])];
        out.data[size_t(e)] = x.data[size_t(src)];
        for (int d = int(shape.size()) - 1; d >= 0; --d) {
          if (++idx[size_t(d)] < shape[size_t(d)])
            break;
          idx[size_t(d)] = 0;
        }
      }
      return {};
    }
    case Op::Concat:
    case Op::Slice: {
      // Both copy chunks of inner * (size along axis) elements per outer index.
      int64_t axis = a.i("axis");
      auto inner = [&](const Shape &s) {
        int64_t p = 1;
        for (size_t d = size_t(axis) + 1; d < s.size(); ++d)
          p *= s[d];
        return p;
      };
      int64_t outer = 1;
      for (int64_t d = 0; d < axis; ++d)
        outer *= shape[size_t(d)];
      out = Tensor(shape);
      int64_t rowOut = shape[size_t(axis)] * inner(shape);
      if (n.op == Op::Slice) {
        const Tensor &x = in(n, 0);
        int64_t rowIn = x.shape[size_t(axis)] * inner(x.shape), skip = a.i("start") * inner(shape);
        for (int64_t o = 0; o < outer; ++o)
          std::copy_n(x.data.begin() + o * rowIn + skip, rowOut, out.data.begin() + o * rowOut);
        return {};
      }
      int64_t at = 0;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        const Tensor &x = in(n, k);
        int64_t rowIn = x.shape[size_t(axis)] * inner(x.shape);
        for (int64_t o = 0; o < outer; ++o)
          std::copy_n(x.data.begin() + o * rowIn, rowIn, out.data.begin() + o * rowOut + at);
        at += rowIn;
      }
      return {};
    }
    case Op::Broadcast: {
      auto map = broadcastMap(in(n, 0).shape, shape);
      out = Tensor(shape);
      for (size_t e = 0; e < map.size(); ++e)
        out.data[e] = in(n, 0).data[size_t(map[e])];
      return {};
    }
    case Op::FlatPack: {
      out = Tensor(shape);
      auto offsets = a.ints("offsets");
      for (size_t i = 0; i < n.inputs.size(); ++i)
        std::copy(in(n, i).data.begin(), in(n, i).data.end(), out.data.begin() + offsets[i]);
      return {};
    }
    case Op::Cast:
      out = in(n, 0);
      if (n.type.dtype == DType::I32)
        for (double &x : out.data)
          x = std::trunc(x);
      return {};
    case Op::BatchSize: out = Tensor({}, double(batch_)); return {};
    case Op::ReduceSum:
      out = reduce(in(n, 0), a.ints("axes"), a.b("keepdims"), shape, 0.0,
                   [](double acc, double x) { return acc + x; });
      return {};
    case Op::ReduceMean: {
      out = reduce(in(n, 0), a.ints("axes"), a.b("keepdims"), shape, 0.0,
                   [](double acc, double x) { return acc + x; });
      double count = double(in(n, 0).numel()) / double(std::max<int64_t>(out.numel(), 1));
      for (double &x : out.data)
        x /= count;
      return {};
    }
    case Op::ReduceMax:
      out = reduce(in(n, 0), a.ints("axes"), a.b("keepdims"), shape,
                   -std::numeric_limits<double>::infinity(),
                   [](double acc, double x) { return std::max(acc, x); });
      return {};
    case Op::ArgMax: {
      const Tensor &x = in(n, 0);
      int64_t c = x.shape.back(), rows = x.numel() / std::max<int64_t>(c, 1);
      out = Tensor(shape);
      for (int64_t r = 0; r < rows; ++r) {
        auto row = x.data.begin() + r * c;
        out.data[size_t(r)] = double(std::max_element(row, row + c) - row);
      }
      return {};
    }
    case Op::MatMul: {
      const Tensor &x = in(n, 0), &y = in(n, 1);
      bool ta = a.b("transA"), tb = a.b("transB");
      int64_t m = shape[0], nn = shape[1], k = ta ? x.shape[0] : x.shape[1];
      out = Tensor(shape);
      // Each element is a sum in double over p in order, from the rows of
      // op(x) and the columns of op(y) laid out contiguously: four columns
      // at a time, as four independent sums (the same bits as one by one,
      // several times faster for the suites that compare against this).
      std::vector<double> xt, yt;
      if (ta) {
        xt.resize(size_t(m * k));
        for (int64_t p = 0; p < k; ++p)
          for (int64_t i = 0; i < m; ++i)
            xt[size_t(i * k + p)] = x.data[size_t(p * m + i)];
      }
      if (!tb) {
        yt.resize(size_t(nn * k));
        for (int64_t p = 0; p < k; ++p)
          for (int64_t j = 0; j < nn; ++j)
            yt[size_t(j * k + p)] = y.data[size_t(p * nn + j)];
      }
      const double *rows = ta ? xt.data() : x.data.data();
      const double *cols = tb ? y.data.data() : yt.data();
      for (int64_t i = 0; i < m; ++i) {
        const double *xi = rows + i * k;
        double *oi = out.data.data() + i * nn;
        int64_t j = 0;
        for (; j + 4 <= nn; j += 4) {
          const double *y0 = cols + j * k, *y1 = y0 + k, *y2 = y1 + k, *y3 = y2 + k;
          double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (int64_t p = 0; p < k; ++p) {
            s0 += xi[p] * y0[p];
            s1 += xi[p] * y1[p];
            s2 += xi[p] * y2[p];
            s3 += xi[p] * y3[p];
          }
          oi[j] = s0, oi[j + 1] = s1, oi[j + 2] = s2, oi[j + 3] = s3;
        }
        for (; j < nn; ++j) {
          const double *yj = cols + j * k;
          double s = 0;
          for (int64_t p = 0; p < k; ++p)
            s += xi[p] * yj[p];
          oi[j] = s;
        }
      }
      return {};
    }
    case Op::SoftMax:
    case Op::LogSoftMax: {
      out = in(n, 0);
      int64_t c = shape.back(), rows = out.numel() / std::max<int64_t>(c, 1);
      for (int64_t r = 0; r < rows; ++r) {
        double *row = out.data.data() + r * c;
        double mx = *std::max_element(row, row + c), sum = 0;
        for (int64_t j = 0; j < c; ++j)
          sum += std::exp(row[j] - mx);
        for (int64_t j = 0; j < c; ++j)
          row[j] =
              n.op == Op::LogSoftMax ? row[j] - mx - std::log(sum) : std::exp(row[j] - mx) / sum;
      }
      return {};
    }
    case Op::OneHot: {
      int64_t c = a.i("classes");
      out = Tensor(shape);
      for (int64_t i = 0; i < in(n, 0).numel(); ++i) {
        int64_t label = int64_t(in(n, 0).data[size_t(i)]);
        if (label < 0 || label >= c)
          return error(fmt::format("label {} at {} is outside [0, {})", label, i, c));
        out.data[size_t(i * c + label)] = 1;
      }
      return {};
    }
    case Op::NllLoss: {
      const Tensor &lp = in(n, 0), &lab = in(n, 1);
      int64_t rows = lp.shape[0], c = lp.shape[1];
      double s = 0;
      for (int64_t i = 0; i < rows; ++i) {
        int64_t label = int64_t(lab.data[size_t(i)]);
        if (label < 0 || label >= c)
          return error(fmt::format("label {} at {} is outside [0, {})", label, i, c));
        s -= lp.data[size_t(i * c + label)];
      }
      out = Tensor({}, rows ? s / double(rows) : 0.0);
      return {};
    }
    case Op::Conv2d: {
      out = Tensor(shape);
      conv2d(in(n, 0), in(n, 1), window(a, in(n, 1).shape[2], in(n, 1).shape[3]), out);
      return {};
    }
    case Op::Conv2dGradInput: {
      out = Tensor(shape);
      conv2dGradInput(in(n, 0), in(n, 1), window(a, in(n, 1).shape[2], in(n, 1).shape[3]), out);
      return {};
    }
    case Op::Conv2dGradWeight: {
      out = Tensor(shape);
      conv2dGradWeight(in(n, 0), in(n, 1), window(a, shape[2], shape[3]), out);
      return {};
    }
    case Op::MaxPool2d: {
      auto k = a.ints("kernel");
      auto arg = poolArgmax(in(n, 0), shape, window(a, k[0], k[1]));
      out = Tensor(shape);
      for (size_t i = 0; i < arg.size(); ++i)
        out.data[i] = in(n, 0).data[size_t(arg[i])];
      return {};
    }
    case Op::MaxPool2dGrad: {
      auto k = a.ints("kernel");
      const Tensor &gy = in(n, 1);
      auto arg = poolArgmax(in(n, 0), gy.shape, window(a, k[0], k[1]));
      out = Tensor(shape);
      for (size_t i = 0; i < arg.size(); ++i)
        out.data[size_t(arg[i])] += gy.data[i];
      return {};
    }
    case Op::AvgPool2d:
    case Op::AvgPool2dGrad: {
      // Torch7's count_include_pad: a window divides by its size clipped to
      // the input and its padding, which is kh kw except for the windows
      // that ceil mode's pad_end adds.
      auto k = a.ints("kernel");
      Window win = window(a, k[0], k[1]);
      const Tensor &src = in(n, 0);
      const bool forward = n.op == Op::AvgPool2d;
      const Shape &xs = forward ? src.shape : shape, &ys = forward ? shape : src.shape;
      auto span = [](int64_t o, int64_t s, int64_t p, int64_t k, int64_t size) {
        int64_t start = o * s - p;
        return std::min(start + k, size + p) - start;
      };
      out = Tensor(shape);
      for (int64_t b = 0; b < ys[0]; ++b)
        for (int64_t c = 0; c < ys[1]; ++c)
          for (int64_t oy = 0; oy < ys[2]; ++oy)
            for (int64_t ox = 0; ox < ys[3]; ++ox) {
              const double scale = 1.0 / double(span(oy, win.sh, win.ph, win.kh, xs[2]) *
                                                span(ox, win.sw, win.pw, win.kw, xs[3]));
              for (int64_t ky = 0; ky < win.kh; ++ky)
                for (int64_t kx = 0; kx < win.kw; ++kx) {
                  int64_t iy = oy * win.sh - win.ph + ky, ix = ox * win.sw - win.pw + kx;
                  if (iy < 0 || iy >= xs[2] || ix < 0 || ix >= xs[3])
                    continue;
                  size_t xi = size_t(((b * xs[1] + c) * xs[2] + iy) * xs[3] + ix);
                  size_t yi = size_t(((b * ys[1] + c) * ys[2] + oy) * ys[3] + ox);
                  if (forward)
                    out.data[yi] += src.data[xi] * scale;
                  else
                    out.data[xi] += src.data[yi] * scale;
                }
            }
      return {};
    }
    default: // float math is evaluated above, by class
      break;
    }
    GRAPHC_CHECK(false, "the interpreter has no rule for {}", opName(n.op));
    return {};
  }

  const Graph &g_;
  std::vector<Tensor> vals_;
  int64_t batch_ = -1;
};

} // namespace

Tensor::Tensor(Shape s, double fill) : shape(std::move(s)) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  data.assign(size_t(n), fill);
}

Expected<std::vector<Tensor>> evaluate(const Graph &g, const Bindings &inputs) {
  return Evaluator(g).run(inputs);
}

Expected<std::map<std::string, Tensor>> run(const Graph &g, const Bindings &inputs) {
  auto vals = evaluate(g, inputs);
  if (!vals)
    return vals.diag();
  std::map<std::string, Tensor> out;
  for (const Output &o : g.outputs())
    out[o.name] = (*vals)[size_t(o.value)];
  return out;
}

} // namespace graphc::ir
