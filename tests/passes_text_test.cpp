// tests/passes_text_test.cpp - pass tests as IR text in, IR text out.
//
// Each case is the input graph and the exact expected output, both in the
// textual IR; on a mismatch the test prints both.
#include "ir/Interpreter.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Autodiff.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>

using namespace graphc;
using namespace graphc::ir;

namespace {

Graph parse(const std::string &text) {
  auto g = parseGraph(text, "<test>");
  INFO((g ? "" : g.diag().str()));
  REQUIRE(bool(g));
  REQUIRE(bool(verify(*g)));
  return std::move(*g);
}

void checkPass(const std::function<Graph(const Graph &)> &pass, const std::string &in,
               const std::string &expected) {
  Graph g = parse(in);
  Graph out = pass(g);
  REQUIRE(bool(verify(out)));
  std::string got = print(out);
  INFO("input:\n" << in << "\ngot:\n" << got << "\nexpected:\n" << expected);
  CHECK(got == expected);
  // The rewritten graph computes what the original did.
  std::mt19937 rng(1);
  Bindings b;
  for (ValueId v : g.inputs())
    b[g.node(v).attrs.s("name")] = test::randomTensor(concrete(g.type(v).shape, 3), rng);
  auto before = run(g, b), after = run(out, b);
  REQUIRE(bool(before));
  REQUIRE(bool(after));
  for (auto &[name, t] : *before)
    CHECK(test::relError(after->at(name).data, t.data) < 1e-12);
}

} // namespace

TEST_CASE("canonicalize folds transposes into matmul flags", "[passes][canonicalize]") {
  checkPass(passes::canonicalize, R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %2 = transpose %w {perm = [1,0]} : f32[4,3]
  %3 = matmul %x, %2 : f32[N,3]
  %4 = transpose %3 {perm = [0,1]} : f32[N,3]
  return y = %4
}
)",
            R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %2 = matmul %x, %w {transB = true} : f32[N,3]
  return y = %2
}
)");
}

TEST_CASE("canonicalize collapses reshapes and removes free ones", "[passes][canonicalize]") {
  checkPass(passes::canonicalize, R"(graph @t {
  %x = input {name = "x"} : f32[N,2,3]
  %1 = reshape %x {shape = [-1,6]} : f32[N,6]
  %2 = reshape %1 {shape = [-1,3,2]} : f32[N,3,2]
  %3 = reshape %2 {shape = [-1,2,3]} : f32[N,2,3]
  %4 = exp %3 : f32[N,2,3]
  return y = %4
}
)",
            R"(graph @t {
  %x = input {name = "x"} : f32[N,2,3]
  %1 = exp %x : f32[N,2,3]
  return y = %1
}
)");
}

TEST_CASE("canonicalize folds constants and identities, CSE and DCE", "[passes][canonicalize]") {
  checkPass(passes::canonicalize, R"(graph @t {
  %x = input {name = "x"} : f32[N,3]
  %1 = constant {value = 2.0} : f32[]
  %2 = constant {value = 3.0} : f32[]
  %3 = mul %1, %2 : f32[]
  %4 = constant {value = 1.0} : f32[]
  %5 = mul %x, %4 : f32[N,3]
  %6 = add %5, %3 : f32[N,3]
  %7 = neg %6 : f32[N,3]
  %8 = neg %7 : f32[N,3]
  %9 = exp %x : f32[N,3]
  %10 = add %8, %8 : f32[N,3]
  return y = %10
}
)",
            R"(graph @t {
  %x = input {name = "x"} : f32[N,3]
  %1 = constant {value = 6.0} : f32[]
  %2 = add %x, %1 : f32[N,3]
  %3 = add %2, %2 : f32[N,3]
  return y = %3
}
)");
}

TEST_CASE("autodiff of a linear layer with a bias, as IR text", "[passes][autodiff]") {
  Graph g = parse(R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %params = input {name = "params"} : f32[15]
  %2 = param %params {name = "0.weight", offset = 0, shape = [3,4]} : f32[3,4]
  %3 = param %params {name = "0.bias", offset = 12, shape = [3]} : f32[3]
  %4 = matmul %x, %2 {transB = true} : f32[N,3]
  %5 = add %4, %3 : f32[N,3]
  %6 = reduce_mean %5 {axes = []} : f32[]
  return loss = %6
}
)");
  Graph out = passes::canonicalize(passes::autodiff(g));
  std::string want = R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %params = input {name = "params"} : f32[15]
  %2 = param %params {name = "0.weight", offset = 0, shape = [3,4]} : f32[3,4]
  %3 = param %params {name = "0.bias", offset = 12, shape = [3]} : f32[3]
  %4 = matmul %x, %2 {transB = true} : f32[N,3]
  %5 = add %4, %3 : f32[N,3]
  %6 = reduce_mean %5 {axes = []} : f32[]
  %7 = constant {value = 1.0} : f32[]
  %8 = constant {value = 3.0} : f32[]
  %9 = batch_size %5 : f32[]
  %10 = mul %8, %9 : f32[]
  %11 = div %7, %10 : f32[]
  %12 = reshape %11 {shape = [1,1]} : f32[1,1]
  %13 = broadcast %12 {shape = [-1,3]} : f32[N,3]
  %14 = reduce_sum %13 {axes = [0]} : f32[3]
  %15 = matmul %13, %x {transA = true} : f32[3,4]
  %16 = flat_pack %15, %14 {offsets = [0,12], size = 15} : f32[15]
  return loss = %6, grad = %16
}
)";
  INFO(print(out));
  CHECK(print(out) == want);
}

TEST_CASE("fusion puts a bias and ReLU into the GEMM and says why", "[passes][fusion]") {
  Graph g = parse(R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %b = input {name = "b"} : f32[3]
  %3 = matmul %x, %w {transB = true} : f32[N,3]
  %4 = add %3, %b : f32[N,3]
  %5 = relu %4 : f32[N,3]
  %6 = exp %5 : f32[N,3]
  %7 = log %6 : f32[N,3]
  return y = %7, h = %5
}
)");
  passes::FusionResult r = passes::fuse(g);
  std::string want = R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %b = input {name = "b"} : f32[3]
  kernel @k0 gemm "bias add, then ReLU as GEMM epilogue" {
    %3 = matmul %x, %w {transB = true} : f32[N,3]
    %4 = add %3, %b : f32[N,3]
    %5 = relu %4 : f32[N,3]
  }
  kernel @k1 elementwise "elementwise chain of 2 ops over [N,3]" {
    %6 = exp %5 : f32[N,3]
    %7 = log %6 : f32[N,3]
  }
  return y = %7, h = %5
}
)";
  INFO(print(r.graph));
  CHECK(print(r.graph) == want);
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0] ==
        "epilogue of %3 (matmul) ends at %5 (relu): its result is a graph output and is stored");
}

TEST_CASE("a GEMM epilogue ends at a value with more than one use", "[passes][fusion]") {
  // %5 feeds exp and neg: it is stored once by the GEMM's kernel, and the
  // pointwise work after it is a kernel of its own, not more epilogue.
  Graph g = parse(R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %b = input {name = "b"} : f32[3]
  %3 = matmul %x, %w {transB = true} : f32[N,3]
  %4 = add %3, %b : f32[N,3]
  %5 = relu %4 : f32[N,3]
  %6 = exp %5 : f32[N,3]
  %7 = neg %5 : f32[N,3]
  %8 = add %6, %7 : f32[N,3]
  return y = %8
}
)");
  passes::FusionResult r = passes::fuse(g);
  std::string want = R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %b = input {name = "b"} : f32[3]
  kernel @k0 gemm "bias add, then ReLU as GEMM epilogue" {
    %3 = matmul %x, %w {transB = true} : f32[N,3]
    %4 = add %3, %b : f32[N,3]
    %5 = relu %4 : f32[N,3]
  }
  kernel @k1 elementwise "elementwise chain of 3 ops over [N,3]" {
    %6 = exp %5 : f32[N,3]
    %7 = neg %5 : f32[N,3]
    %8 = add %6, %7 : f32[N,3]
  }
  return y = %8
}
)";
  INFO(print(r.graph));
  CHECK(print(r.graph) == want);
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0] ==
        "epilogue of %3 (matmul) ends at %5 (relu): its result has 2 uses and is stored");
}

TEST_CASE("a value only a later chain uses is computed there, not stored", "[passes][fusion]") {
  // ReLU's mask `y > 0` is a neighbour of y in the forward chain, but only
  // the backward chain (after a reduction) reads it. y is stored anyway (an
  // output, and the reduction's input), so the mask moves into the chain
  // that uses it: one activation less written, read and kept alive.
  Graph g = parse(R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %g = input {name = "g"} : f32[N,4]
  %2 = relu %x : f32[N,4]
  %3 = constant {value = 0.0} : f32[]
  %4 = greater %2, %3 : f32[N,4]
  %5 = reduce_sum %2 {axes = [0,1]} : f32[]
  %6 = mul %g, %5 : f32[N,4]
  %7 = select %4, %6, %3 : f32[N,4]
  return y = %7, h = %2
}
)");
  passes::FusionResult r = passes::fuse(g);
  std::string want = R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %g = input {name = "g"} : f32[N,4]
  kernel @k0 elementwise "elementwise chain of 1 ops over [N,4]" {
    %2 = relu %x : f32[N,4]
  }
  %3 = constant {value = 0.0} : f32[]
  kernel @k1 reduce_sum "no fusion rule applies" {
    %4 = reduce_sum %2 {axes = [0,1]} : f32[]
  }
  kernel @k2 elementwise "elementwise chain of 3 ops over [N,4]" {
    %5 = greater %2, %3 : f32[N,4]
    %6 = mul %g, %4 : f32[N,4]
    %7 = select %5, %6, %3 : f32[N,4]
  }
  return y = %7, h = %2
}
)";
  INFO(print(r.graph));
  CHECK(print(r.graph) == want);
}

TEST_CASE("a value stays in its chain when moving it would store its input instead",
          "[passes][fusion]") {
  // The mask's input %2 is used only inside the forward chain: moving the
  // mask out of it would only trade storing the mask for storing %2.
  Graph g = parse(R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %g = input {name = "g"} : f32[N,4]
  %2 = relu %x : f32[N,4]
  %3 = constant {value = 0.0} : f32[]
  %4 = greater %2, %3 : f32[N,4]
  %5 = exp %2 : f32[N,4]
  %6 = reduce_sum %5 {axes = [0,1]} : f32[]
  %7 = mul %g, %6 : f32[N,4]
  %8 = select %4, %7, %3 : f32[N,4]
  return y = %8
}
)");
  passes::FusionResult r = passes::fuse(g);
  std::string want = R"(graph @t {
  %x = input {name = "x"} : f32[N,4]
  %g = input {name = "g"} : f32[N,4]
  %2 = constant {value = 0.0} : f32[]
  kernel @k0 elementwise "elementwise chain of 3 ops over [N,4]" {
    %3 = relu %x : f32[N,4]
    %4 = greater %3, %2 : f32[N,4]
    %5 = exp %3 : f32[N,4]
  }
  kernel @k1 reduce_sum "no fusion rule applies" {
    %6 = reduce_sum %5 {axes = [0,1]} : f32[]
  }
  kernel @k2 elementwise "elementwise chain of 2 ops over [N,4]" {
    %7 = mul %g, %6 : f32[N,4]
    %8 = select %4, %7, %2 : f32[N,4]
  }
  return y = %8
}
)";
  INFO(print(r.graph));
  CHECK(print(r.graph) == want);
}
