// tests/verifier_test.cpp - the verifier accepts valid graphs and names the
// node that breaks an invariant.
#include "frontend/Trace.h"
#include "ir/Graph.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <string>

using namespace graphc;
using namespace graphc::ir;

namespace {

using Ints = std::vector<int64_t>;

Type f32(Shape s) { return {DType::F32, std::move(s)}; }
Type i32(Shape s) { return {DType::I32, std::move(s)}; }

/// %x, %1 params, %2 weight, %3 matmul, %4 bias, %5 add, %6 relu,
/// %7 log_softmax, %labels, %9 nll_loss.
struct Mlp {
  Graph g{"mlp"};
  ValueId x, params, w, mm, b, add, relu, lsm, labels, loss;
  int group;

  Mlp() {
    x = g.input("x", f32({kBatch, 4}));
    params = g.input("params", f32({15}));
    w = g.add(Op::Param, {params},
              {{"name", std::string("1.weight")}, {"offset", int64_t(0)}, {"shape", Ints{3, 4}}});
    mm = g.add(Op::MatMul, {x, w}, {{"transB", true}});
    b = g.add(Op::Param, {params},
              {{"name", std::string("1.bias")}, {"offset", int64_t(12)}, {"shape", Ints{3}}});
    add = g.add(Op::Add, {mm, b});
    relu = g.add(Op::Relu, {add});
    lsm = g.add(Op::LogSoftMax, {relu});
    labels = g.input("labels", i32({kBatch}));
    loss = g.add(Op::NllLoss, {lsm, labels});
    group = g.addGroup({"gemm", "bias and ReLU as GEMM epilogues"});
    for (ValueId v : {mm, add, relu})
      g.node(v).group = group;
    g.addOutput("loss", loss);
    g.addOutput("output", lsm);
  }
};

/// verify(g) fails, with a message containing every one of `parts`.
void expectInvalid(const Graph &g, std::vector<std::string> parts) {
  INFO("graph:\n" << print(g));
  Status s = verify(g);
  REQUIRE_FALSE(bool(s));
  INFO("message: " << s.diag().message);
  CHECK(s.diag().message.rfind("verifier: ", 0) == 0);
  for (auto &p : parts) {
    CAPTURE(p);
    CHECK(s.diag().message.find(p) != std::string::npos);
  }
}

} // namespace

TEST_CASE("verifier: valid graphs verify", "[verifier]") {
  SECTION("API-built MLP with a kernel group") {
    Mlp m;
    REQUIRE(m.mm == 3); // the node numbering the other tests rely on
    REQUIRE(m.loss == 9);
    Status s = verify(m.g);
    INFO(print(m.g) << (s ? "" : s.diag().message));
    CHECK(bool(s));
  }
  SECTION("empty graph") { CHECK(bool(verify(Graph("empty")))); }
  SECTION("traced seed MLP") {
    auto t = frontend::trace(test::seedMlp(), {1, 32, 32});
    REQUIRE(t);
    Status s = verify(t->graph);
    INFO(print(t->graph) << (s ? "" : s.diag().message));
    CHECK(bool(s));
  }
  SECTION("parsed golden text") {
    auto g = parseGraph("graph @g {\n"
                        "  %x = input {name = \"x\"} : f32[N,4]\n"
                        "  %1 = reduce_max %x {axes = [1], keepdims = true} : f32[N,1]\n"
                        "  %2 = sub %x, %1 : f32[N,4]\n"
                        "  return y = %2\n"
                        "}\n");
    REQUIRE(g);
    CHECK(bool(verify(*g)));
  }
}

TEST_CASE("verifier: a node with the wrong type", "[verifier]") {
  Mlp m;
  SECTION("wrong shape") {
    m.g.node(m.relu).type = f32({kBatch, 5});
    expectInvalid(m.g, {"%6 (relu)", "f32[N,5]", "f32[N,3]"});
  }
  SECTION("wrong dtype") {
    m.g.node(m.mm).type = i32({kBatch, 3});
    expectInvalid(m.g, {"%3 (matmul)", "i32[N,3]", "f32[N,3]"});
  }
  SECTION("symbolic batch lost") {
    m.g.node(m.add).type = f32({2, 3});
    expectInvalid(m.g, {"%5 (add)", "f32[2,3]", "f32[N,3]"});
  }
  SECTION("attribute changed so that the operands no longer fit") {
    m.g.node(m.mm).attrs.set("transB", false);
    expectInvalid(m.g, {"%3 (matmul)", "inner dimensions differ"});
  }
  SECTION("parameter view moved outside the flat buffer") {
    m.g.node(m.b).attrs.set("offset", int64_t(13));
    expectInvalid(m.g, {"%4 (param)", "outside the flat buffer"});
  }
}

TEST_CASE("verifier: operands must be defined before use", "[verifier]") {
  Mlp m;
  SECTION("operand defined after its use") {
    m.g.node(m.mm).inputs[0] = m.relu;
    expectInvalid(m.g, {"%3 (matmul)", "operand %6 is not defined before use"});
  }
  SECTION("node using itself") {
    m.g.node(m.relu).inputs[0] = m.relu;
    expectInvalid(m.g, {"%6 (relu)", "operand %6"});
  }
  SECTION("operand that does not exist") {
    m.g.node(m.add).inputs[1] = 42;
    expectInvalid(m.g, {"%5 (add)", "operand %42"});
    // The broken graph still prints, for --print-after on a failing pass.
    CHECK(print(m.g).find("%5 = add %3, %42 : f32[N,3]") != std::string::npos);
  }
  SECTION("negative operand") {
    m.g.node(m.add).inputs[1] = -1;
    expectInvalid(m.g, {"%5 (add)", "operand %-1"});
  }
  SECTION("wrong operand count") {
    m.g.node(m.relu).inputs.push_back(m.x);
    expectInvalid(m.g, {"%6 (relu)", "has 2 operands, expects 1"});
  }
}

TEST_CASE("verifier: inputs, constants, outputs and groups", "[verifier]") {
  SECTION("duplicate input names") {
    Graph g("dup");
    ValueId a = g.input("data 0", f32({kBatch, 2}));
    ValueId b = g.input("data 1", f32({kBatch, 2}));
    g.addOutput("y", g.add(Op::Add, {a, b}));
    REQUIRE(bool(verify(g)));
    g.node(b).attrs.set("name", std::string("data 0"));
    expectInvalid(g, {"%1 (input)", "\"data 0\" used twice"});
  }
  SECTION("duplicate identifier input names") {
    Mlp m;
    m.g.node(m.labels).attrs.set("name", std::string("x"));
    expectInvalid(m.g, {"(input)", "\"x\" used twice"});
  }
  SECTION("input without a name") {
    Mlp m;
    m.g.node(m.params).attrs = Attrs{};
    expectInvalid(m.g, {"%1 (input)", "without a name"});
  }
  SECTION("constant without a value") {
    Graph g;
    ValueId c = g.constant(1.5);
    g.addOutput("c", c);
    REQUIRE(bool(verify(g)));
    g.node(c).attrs = Attrs{};
    expectInvalid(g, {"%0 (constant)", "without a value"});
  }
  SECTION("output referring to an id past the end") {
    Mlp m;
    m.g.outputs()[0].value = 99;
    expectInvalid(m.g, {"output loss", "%99"});
  }
  SECTION("output referring to a negative id") {
    Mlp m;
    m.g.outputs()[1].value = -1;
    expectInvalid(m.g, {"output output", "%-1"});
  }
  SECTION("duplicate output names") {
    Mlp m;
    m.g.addOutput("loss", m.relu);
    expectInvalid(m.g, {"output name loss used twice"});
  }
  SECTION("kernel group index past the end") {
    Mlp m;
    m.g.node(m.lsm).group = 1; // only group 0 exists
    expectInvalid(m.g, {"%7 (log_softmax)", "kernel group 1 does not exist"});
    CHECK(print(m.g).find("kernel @k1 ?") != std::string::npos);
  }
  SECTION("negative kernel group index") {
    Mlp m;
    m.g.node(m.relu).group = -2;
    expectInvalid(m.g, {"%6 (relu)", "kernel group -2 does not exist"});
  }
  SECTION("the first broken node is reported") {
    Mlp m;
    m.g.node(m.loss).type = f32({1});
    m.g.node(m.add).type = f32({kBatch, 4});
    expectInvalid(m.g, {"%5 (add)"});
  }
}
