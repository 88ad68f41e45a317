// tests/ir_text_test.cpp - the textual IR: printer/parser round trips, golden
// text, and located parser errors.
#include "ir/Graph.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <set>
#include <string>

using namespace graphc;
using namespace graphc::ir;

namespace {

using Ints = std::vector<int64_t>;

Type f32(Shape s) { return {DType::F32, std::move(s)}; }
Type i32(Shape s) { return {DType::I32, std::move(s)}; }

/// Structural equality of two graphs, with a readable account of the first
/// difference.
void requireSameGraph(const Graph &a, const Graph &b) {
  INFO("graph a:\n" << print(a) << "graph b:\n" << print(b));
  REQUIRE(a.name() == b.name());
  REQUIRE(a.size() == b.size());
  for (ValueId v = 0; v < a.size(); ++v) {
    const Node &x = a.node(v), &y = b.node(v);
    CAPTURE(v, printNode(a, v), printNode(b, v));
    CHECK(x.op == y.op);
    CHECK(x.type == y.type);
    CHECK(x.inputs == y.inputs);
    CHECK(x.attrs == y.attrs);
    CHECK(x.group == y.group);
  }
  REQUIRE(a.groups().size() == b.groups().size());
  for (size_t i = 0; i < a.groups().size(); ++i) {
    CAPTURE(i);
    CHECK(a.groups()[i].kind == b.groups()[i].kind);
    CHECK(a.groups()[i].reason == b.groups()[i].reason);
  }
  CHECK(a.outputs() == b.outputs());
}

/// print(parse(print(g))) == print(g), and the parsed graph equals g node for
/// node.
void requireRoundTrip(const Graph &g) {
  std::string text = print(g);
  INFO("printed:\n" << text);
  auto parsed = parseGraph(text, "roundtrip.ir");
  if (!parsed)
    FAIL("parse failed: " << parsed.diag().str());
  std::string again = print(*parsed);
  INFO("reprinted:\n" << again);
  REQUIRE(again == text);
  requireSameGraph(g, *parsed);
  auto s = verify(*parsed);
  INFO((s ? std::string() : s.diag().str()));
  CHECK(bool(s));
}

/// The small MLP forward used by several tests, with two kernel groups.
Graph mlpWithGroups() {
  Graph g("mlp");
  ValueId x = g.input("x", f32({kBatch, 4}));
  ValueId labels = g.input("labels", i32({kBatch}));
  ValueId params = g.input("params", f32({15}));
  ValueId w =
      g.add(Op::Param, {params},
            {{"name", std::string("1.weight")}, {"offset", int64_t(0)}, {"shape", Ints{3, 4}}});
  ValueId b = g.add(Op::Param, {params},
                    {{"name", std::string("1.bias")}, {"offset", int64_t(12)}, {"shape", Ints{3}}});
  ValueId mm = g.add(Op::MatMul, {x, w}, {{"transB", true}});
  ValueId y = g.add(Op::Add, {mm, b});
  ValueId r = g.add(Op::Relu, {y});
  ValueId lp = g.add(Op::LogSoftMax, {r});
  ValueId loss = g.add(Op::NllLoss, {lp, labels});
  int k0 = g.addGroup({"gemm", "bias and ReLU as GEMM epilogues"});
  int k1 = g.addGroup({"logsoftmax_nll", "row max, \"log-sum-exp\", gather \\ mean"});
  for (ValueId v : {mm, y, r})
    g.node(v).group = k0;
  for (ValueId v : {lp, loss})
    g.node(v).group = k1;
  g.addOutput("loss", loss);
  g.addOutput("output", lp);
  return g;
}

} // namespace

TEST_CASE("IR text: MLP with kernel groups round-trips", "[ir]") {
  Graph g = mlpWithGroups();
  requireRoundTrip(g);

  // The printed form shows the groups as blocks with their reasons.
  std::string text = print(g);
  INFO(text);
  CHECK(text.find("  kernel @k0 gemm \"bias and ReLU as GEMM epilogues\" {\n"
                  "    %5 = matmul %x, %3 {transB = true} : f32[N,3]\n") != std::string::npos);
  CHECK(text.find("  kernel @k1 logsoftmax_nll "
                  "\"row max, \\\"log-sum-exp\\\", gather \\\\ mean\" {\n") != std::string::npos);
  CHECK(text.find("  return loss = %9, output = %8\n}\n") != std::string::npos);
}

TEST_CASE("IR text: a group split into two runs keeps one group", "[ir]") {
  Graph g("split");
  ValueId x = g.input("x", f32({kBatch, 3}));
  ValueId a = g.add(Op::Exp, {x});
  ValueId b = g.add(Op::Neg, {a});
  ValueId c = g.add(Op::Tanh, {b});
  int k = g.addGroup({"elementwise", "chain"});
  g.node(a).group = k;
  g.node(c).group = k; // b sits between them, outside the group
  g.addOutput("y", c);
  std::string text = print(g);
  INFO(text);
  // Two blocks, both labelled @k0.
  size_t first = text.find("kernel @k0");
  REQUIRE(first != std::string::npos);
  CHECK(text.find("kernel @k0", first + 1) != std::string::npos);
  requireRoundTrip(g);
}

TEST_CASE("IR text: adjacent groups and groups listed out of order", "[ir]") {
  Graph g("groups");
  ValueId x = g.input("x", f32({kBatch, 3}));
  ValueId a = g.add(Op::Exp, {x});
  ValueId b = g.add(Op::Neg, {a});
  ValueId c = g.add(Op::Tanh, {b});
  ValueId d = g.add(Op::Sigmoid, {c});
  int k0 = g.addGroup({"elementwise", "first"});
  int k1 = g.addGroup({"elementwise", "second"});
  int k2 = g.addGroup({"unused", "no node uses this group"});
  (void)k2;
  // k1 appears before k0 in the node order, and the two blocks touch.
  g.node(a).group = k1;
  g.node(b).group = k1;
  g.node(c).group = k0;
  g.node(d).group = k0;
  g.addOutput("y", d);
  std::string text = print(g);
  INFO(text);
  auto parsed = parseGraph(text);
  if (!parsed)
    FAIL(parsed.diag().str());
  CHECK(print(*parsed) == text);
  for (ValueId v : {a, b, c, d}) {
    CAPTURE(v);
    CHECK(parsed->node(v).group == g.node(v).group);
  }
  REQUIRE(parsed->groups().size() >= 2);
  CHECK(parsed->groups()[size_t(k0)].reason == "first");
  CHECK(parsed->groups()[size_t(k1)].reason == "second");
}

TEST_CASE("IR text: pooling's pad_end (Torch7's ceil mode) round-trips", "[ir]") {
  Graph g("ceil");
  ValueId x = g.input("x", f32({kBatch, 2, 6, 7}));
  Attrs a{{"kernel", Ints{3, 4}},
          {"stride", Ints{2, 2}},
          {"pad", Ints{1, 1}},
          {"pad_end", Ints{1, 1}}};
  ValueId m = g.add(Op::MaxPool2d, {x}, a);
  ValueId v = g.add(Op::AvgPool2d, {x}, a);
  g.addOutput("max", m);
  g.addOutput("avg", v);
  requireRoundTrip(g);
  const std::string text = print(g);
  CHECK(text.find("pad_end = [1,1]") != std::string::npos);
  auto parsed = parseGraph(text);
  REQUIRE(parsed);
  CHECK(parsed->type(m).shape == Shape{kBatch, 2, 4, 4});
  CHECK(parsed->node(v).attrs.ints("pad_end") == Ints{1, 1});
}

TEST_CASE("IR text: attributes of every kind round-trip exactly", "[ir]") {
  Graph g("attrs");
  ValueId x = g.input("x", f32({kBatch, 2}));
  Attrs extra{{"flag", true},
              {"off", false},
              {"count", int64_t(-7)},
              {"big", int64_t(1) << 40},
              {"eps", 0.001},
              {"tiny", 1e-10},
              {"whole", 2.0},
              {"negative", -0.5},
              {"huge", 1.5e300},
              {"third", 1.0 / 3.0},
              {"inf", std::numeric_limits<double>::infinity()},
              {"ninf", -std::numeric_limits<double>::infinity()},
              {"quoted", std::string("say \"hi\" \\ back // not a comment")},
              {"empty_string", std::string()},
              {"list", Ints{1, -2, 3}},
              {"one", Ints{42}},
              {"empty", Ints{}},
              {"floats", std::vector<double>{2.0, -0.5, 1.0 / 3.0, 1e-300, -1.5e300}},
              {"floats_inf", std::vector<double>{std::numeric_limits<double>::infinity(), 1.0}}};
  // Typing rules ignore attributes they do not read, so any op can carry them.
  ValueId r = g.add(Op::Relu, {x}, extra);
  ValueId c1 = g.constant(0.001);
  ValueId c2 = g.constant(1e-10, f32({kBatch, 2}));
  ValueId c3 = g.constant(-3.0, f32({2}));
  ValueId s = g.add(Op::Mul, {r, c2});
  ValueId t = g.add(Op::Add, {s, c3});
  ValueId u = g.add(Op::Mul, {t, c1});
  ValueId red = g.add(Op::ReduceSum, {u}, {{"axes", Ints{}}, {"keepdims", false}});
  g.addOutput("y", u);
  g.addOutput("total", red);
  requireRoundTrip(g);

  auto parsed = parseGraph(print(g));
  REQUIRE(parsed);
  const Attrs &got = parsed->node(r).attrs;
  for (auto &[key, value] : extra.items()) {
    CAPTURE(key, str(value));
    const AttrValue *p = got.find(key);
    REQUIRE(p != nullptr);
    CHECK(p->index() == value.index()); // same kind: bool/int/double/string/list
    CHECK(*p == value);                 // and bit-identical value
  }
  CHECK(parsed->node(c1).attrs.f("value") == 0.001);
  CHECK(parsed->node(c2).attrs.f("value") == 1e-10);
  std::string text = print(g);
  INFO(text);
  CHECK(text.find("eps = 0.001") != std::string::npos);
  CHECK(text.find("tiny = 1e-10") != std::string::npos);
  CHECK(text.find("whole = 2.0") != std::string::npos);
  CHECK(text.find("empty = []") != std::string::npos);
  CHECK(text.find("list = [1,-2,3]") != std::string::npos);
  CHECK(text.find("floats = [2.0,-0.5,") != std::string::npos);
  CHECK(text.find("floats_inf = [inf,1.0]") != std::string::npos);
  CHECK(text.find("flag = true") != std::string::npos);
  CHECK(text.find(R"(quoted = "say \"hi\" \\ back // not a comment")") != std::string::npos);
}

TEST_CASE("IR text: inputs with names that are not identifiers", "[ir]") {
  Graph g("names");
  ValueId a = g.input("image batch", f32({kBatch, 3}));
  ValueId b = g.input("1.weight", f32({3}));
  ValueId c = g.input("_ok_2", f32({3}));
  ValueId s = g.add(Op::Add, {a, b});
  ValueId t = g.add(Op::Sub, {s, c});
  g.addOutput("out.value", t);
  g.addOutput("first", a); // an output may be an input
  std::string text = print(g);
  INFO(text);
  CHECK(text.find("%0 = input {name = \"image batch\"} : f32[N,3]") != std::string::npos);
  CHECK(text.find("%1 = input {name = \"1.weight\"} : f32[3]") != std::string::npos);
  CHECK(text.find("%_ok_2 = input {name = \"_ok_2\"} : f32[3]") != std::string::npos);
  CHECK(text.find("return out.value = %4, first = %0") != std::string::npos);
  requireRoundTrip(g);
  auto parsed = parseGraph(text);
  REQUIRE(parsed);
  CHECK(parsed->findInput("image batch") == a);
  CHECK(parsed->findInput("1.weight") == b);
  CHECK(parsed->findInput("_ok_2") == c);
}

TEST_CASE("IR text: two inputs of the same name print as text that parses", "[ir]") {
  // Found by fuzzing: `%labels = input {name = "params"}` and `%params =
  // input {name = "params"}` parse (the verifier refuses the graph), and both
  // printed as %params, defined twice.
  std::string text = "graph @twice {\n"
                     "  %labels = input {name = \"params\"} : i32[N]\n"
                     "  %params = input {name = \"params\"} : f32[15]\n"
                     "  %2 = relu %params : f32[15]\n"
                     "  return a = %labels, b = %2\n"
                     "}\n";
  auto g = parseGraph(text);
  REQUIRE(g);
  CHECK(!verify(*g));
  std::string printed = print(*g);
  INFO(printed);
  CHECK(printed.find("%params = input {name = \"params\"} : i32[N]") != std::string::npos);
  CHECK(printed.find("%1 = input {name = \"params\"} : f32[15]") != std::string::npos);
  CHECK(printed.find("%2 = relu %1 : f32[15]") != std::string::npos);
  auto again = parseGraph(printed);
  REQUIRE(again);
  CHECK(print(*again) == printed);
}

TEST_CASE("IR text: a graph using every op round-trips", "[ir]") {
  Graph g("every_op");
  std::set<Op> used;
  auto add = [&](Op op, std::vector<ValueId> in, Attrs attrs = {}) {
    auto v = g.tryAdd(op, std::move(in), std::move(attrs));
    if (!v)
      FAIL(opName(op) << ": " << v.diag().message);
    used.insert(op);
    return *v;
  };
  ValueId x = g.input("x", f32({kBatch, 2, 6, 6}));
  ValueId labels = g.input("labels", i32({kBatch}));
  ValueId params = g.input("params", f32({200}));
  ValueId seed = g.input("seed", i32({}));
  used.insert(Op::Input);
  ValueId half = g.constant(0.5);
  used.insert(Op::Constant);
  ValueId w =
      add(Op::Param, {params},
          {{"name", std::string("0.weight")}, {"offset", int64_t(0)}, {"shape", Ints{3, 2, 3, 3}}});
  ValueId conv = add(Op::Conv2d, {x, w}, {{"stride", Ints{1, 1}}, {"pad", Ints{1, 1}}});
  ValueId pool = add(Op::MaxPool2d, {conv},
                     {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"pad", Ints{0, 0}}});
  ValueId pg = add(Op::MaxPool2dGrad, {conv, pool},
                   {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"pad", Ints{0, 0}}});
  ValueId gi = add(Op::Conv2dGradInput, {pg, w},
                   {{"stride", Ints{1, 1}}, {"pad", Ints{1, 1}}, {"in_shape", Ints{2, 6, 6}}});
  ValueId gw = add(Op::Conv2dGradWeight, {x, pg},
                   {{"stride", Ints{1, 1}}, {"pad", Ints{1, 1}}, {"kernel", Ints{3, 3}}});
  ValueId flat = add(Op::Reshape, {pool}, {{"shape", Ints{kBatch, 27}}});
  ValueId avg = add(Op::AvgPool2d, {conv},
                    {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"pad", Ints{1, 1}}});
  ValueId avgGrad = add(Op::AvgPool2dGrad, {avg},
                        {{"kernel", Ints{3, 3}},
                         {"stride", Ints{2, 2}},
                         {"pad", Ints{1, 1}},
                         {"in_shape", Ints{3, 6, 6}}});
  g.addOutput("avg_grad", avgGrad);
  ValueId cat = add(Op::Concat, {gi, x}, {{"axis", int64_t(1)}});
  ValueId cut =
      add(Op::Slice, {cat}, {{"axis", int64_t(1)}, {"start", int64_t(2)}, {"size", int64_t(2)}});
  g.addOutput("cut", cut);
  ValueId tr = add(Op::Transpose, {gi}, {{"perm", Ints{0, 2, 3, 1}}});
  ValueId mask =
      add(Op::RandomMask, {seed}, {{"p", 0.25}, {"salt", int64_t(1)}, {"shape", Ints{kBatch, 27}}});
  ValueId dropped = add(Op::Mul, {flat, mask});
  ValueId v = add(Op::Param, {params},
                  {{"name", std::string("3.weight")}, {"offset", int64_t(54)}, {"shape", Ints{3}}});
  ValueId bv = add(Op::Broadcast, {v}, {{"shape", Ints{kBatch, 3}}});
  ValueId wm = add(Op::Reshape, {w}, {{"shape", Ints{3, 18}}});
  ValueId sl = add(Op::ReduceMean, {wm}, {{"axes", Ints{1}}, {"keepdims", false}});
  ValueId pack = add(Op::FlatPack, {gw, sl}, {{"offsets", Ints{0, 54}}, {"size", int64_t(60)}});
  ValueId wfc =
      add(Op::Param, {params},
          {{"name", std::string("5.weight")}, {"offset", int64_t(57)}, {"shape", Ints{3, 27}}});
  ValueId fc = add(Op::MatMul, {dropped, wfc}, {{"transB", true}});
  // Contraction over the batch: [N,27]^T x [N,27] -> [27,27].
  ValueId logits3 = add(Op::MatMul, {dropped, dropped}, {{"transA", true}});
  ValueId h = add(Op::ReduceSum, {fc}, {{"axes", Ints{1}}, {"keepdims", true}});
  ValueId z = add(Op::Sub, {bv, h});
  ValueId z2 = add(Op::Div, {z, half});
  ValueId z3 = add(Op::Max, {z2, add(Op::Neg, {z})});
  ValueId z4 = add(Op::Min, {z3, add(Op::Exp, {z})});
  ValueId gt = add(Op::Greater, {z4, half});
  ValueId sel = add(Op::Select, {gt, z4, add(Op::Square, {z})});
  ValueId pos = add(Op::Sqrt, {add(Op::Square, {sel})});
  ValueId table = add(Op::ConstTensor, {},
                      {{"shape", Ints{3}}, {"values", std::vector<double>{0.5, -2.0, 1e-7}}});
  ValueId lg = add(Op::Log, {add(Op::Add, {add(Op::Pow, {pos, table}), half})});
  ValueId act = add(Op::Sigmoid, {add(Op::Tanh, {add(Op::Relu, {lg})})});
  ValueId sm = add(Op::SoftMax, {act});
  ValueId lsm = add(Op::LogSoftMax, {sm});
  ValueId mx = add(Op::ReduceMax, {lsm}, {{"axes", Ints{0}}, {"keepdims", true}});
  ValueId am = add(Op::ArgMax, {lsm});
  ValueId oh = add(Op::OneHot, {labels}, {{"classes", int64_t(3)}});
  ValueId amf = add(Op::Cast, {am}, {{"to", std::string("f32")}});
  ValueId nll = add(Op::NllLoss, {lsm, labels});
  ValueId n = add(Op::BatchSize, {x});
  g.addOutput("loss", nll);
  g.addOutput("onehot", oh);
  g.addOutput("pack", pack);
  g.addOutput("transposed", tr);
  g.addOutput("mx", mx);
  g.addOutput("argmax", amf);
  g.addOutput("n", n);
  g.addOutput("gram", logits3);

  std::vector<std::string> missing;
  for (int i = 0; i < kNumOps; ++i)
    if (!used.count(Op(i)))
      missing.push_back(std::string(opName(Op(i))));
  INFO("ops missing from the graph: " << Catch::Detail::stringify(missing));
  REQUIRE(missing.empty());
  requireRoundTrip(g);
}

TEST_CASE("IR text: hand-written golden MLP parses and prints back identically", "[ir]") {
  const std::string golden = R"(graph @mlp {
  %x = input {name = "x"} : f32[N,4]
  %labels = input {name = "labels"} : i32[N]
  %params = input {name = "params"} : f32[15]
  %3 = param %params {name = "1.weight", offset = 0, shape = [3,4]} : f32[3,4]
  %4 = param %params {name = "1.bias", offset = 12, shape = [3]} : f32[3]
  %5 = matmul %x, %3 {transB = true} : f32[N,3]
  %6 = add %5, %4 : f32[N,3]
  %7 = relu %6 : f32[N,3]
  %8 = log_softmax %7 : f32[N,3]
  %9 = nll_loss %8, %labels : f32[]
  return loss = %9, output = %8
}
)";
  auto g = parseGraph(golden, "mlp.ir");
  if (!g)
    FAIL(g.diag().str());
  INFO("golden:\n" << golden << "printed:\n" << print(*g));
  CHECK(print(*g) == golden);
  CHECK(g->size() == 10);
  CHECK(g->node(5).op == Op::MatMul);
  CHECK(g->node(5).attrs.b("transB"));
  CHECK(g->node(5).inputs == std::vector<ValueId>{0, 3});
  CHECK(g->output("loss") == 9);
  CHECK(g->output("output") == 8);
  CHECK(g->type(9) == f32({}));
  CHECK(bool(verify(*g)));

  // The same graph built through the API prints as the golden text, without
  // the kernel groups.
  Graph api = mlpWithGroups();
  Graph plain("mlp");
  ValueId x = plain.input("x", f32({kBatch, 4}));
  ValueId labels = plain.input("labels", i32({kBatch}));
  ValueId params = plain.input("params", f32({15}));
  ValueId w = plain.add(Op::Param, {params}, api.node(3).attrs);
  ValueId b = plain.add(Op::Param, {params}, api.node(4).attrs);
  ValueId y = plain.add(Op::Add, {plain.add(Op::MatMul, {x, w}, {{"transB", true}}), b});
  ValueId lp = plain.add(Op::LogSoftMax, {plain.add(Op::Relu, {y})});
  plain.addOutput("loss", plain.add(Op::NllLoss, {lp, labels}));
  plain.addOutput("output", lp);
  CHECK(print(plain) == golden);
}

TEST_CASE("IR text: golden text with kernel groups", "[ir]") {
  const std::string golden = R"(graph @fused {
  %x = input {name = "x"} : f32[N,4]
  %w = input {name = "w"} : f32[3,4]
  %b = input {name = "b"} : f32[3]
  kernel @k0 gemm "bias and ReLU as GEMM epilogues" {
    %3 = matmul %x, %w {transB = true} : f32[N,3]
    %4 = add %3, %b : f32[N,3]
    %5 = relu %4 : f32[N,3]
  }
  %6 = reduce_sum %5 {axes = [1], keepdims = true} : f32[N,1]
  return y = %6
}
)";
  auto g = parseGraph(golden);
  if (!g)
    FAIL(g.diag().str());
  INFO("printed:\n" << print(*g));
  CHECK(print(*g) == golden);
  REQUIRE(g->groups().size() == 1);
  CHECK(g->groups()[0].kind == "gemm");
  CHECK(g->groups()[0].reason == "bias and ReLU as GEMM epilogues");
  for (ValueId v = 0; v < g->size(); ++v) {
    CAPTURE(v);
    CHECK(g->node(v).group == (v >= 3 && v <= 5 ? 0 : -1));
  }
}

TEST_CASE("IR text: comments and spacing are accepted, printing is canonical", "[ir]") {
  const std::string loose = "// a comment before the graph\n"
                            "graph @g{\n"
                            "   %x=input{name=\"x\"}:f32[ N , 4 ]   // trailing\n"
                            "\n"
                            "  %1 = relu   %x   :   f32[N,4]\n"
                            "  return   output=%1 ,   x = %x\n"
                            "}\n";
  const std::string canonical = "graph @g {\n"
                                "  %x = input {name = \"x\"} : f32[N,4]\n"
                                "  %1 = relu %x : f32[N,4]\n"
                                "  return output = %1, x = %x\n"
                                "}\n";
  auto g = parseGraph(loose);
  if (!g)
    FAIL(g.diag().str());
  CHECK(print(*g) == canonical);
}

namespace {

/// Parses `text`, expects a failure at line:col whose message contains every
/// one of `parts`.
void expectParseError(const std::string &text, int line, int col, std::vector<std::string> parts) {
  INFO("input:\n" << text);
  auto g = parseGraph(text, "t.ir");
  if (g)
    FAIL("parsed without error:\n" << print(*g));
  const Diag &d = g.diag();
  INFO("diagnostic: " << d.str());
  CHECK(d.file == "t.ir");
  CHECK(d.line == line);
  CHECK(d.col == col);
  for (auto &p : parts) {
    CAPTURE(p);
    CHECK(d.message.find(p) != std::string::npos);
  }
  CHECK(d.str().rfind("t.ir:" + std::to_string(line) + ":" + std::to_string(col) + ": error: ",
                      0) == 0);
}

const char *kHead = "graph @g {\n"
                    "  %x = input {name = \"x\"} : f32[N,4]\n";
const char *kTail = "  return output = %1\n"
                    "}\n";

} // namespace

TEST_CASE("IR parser errors carry line:col and say what is wrong", "[ir]") {
  SECTION("unknown op") {
    expectParseError(std::string(kHead) + "  %1 = frobnicate %x : f32[N,4]\n" + kTail, 3, 8,
                     {"unknown op", "'frobnicate'"});
  }
  SECTION("undefined value") {
    expectParseError(std::string(kHead) + "  %1 = relu %y : f32[N,4]\n" + kTail, 3, 13,
                     {"undefined value %y"});
  }
  SECTION("value used before its definition") {
    expectParseError(std::string(kHead) + "  %1 = add %x, %2 : f32[N,4]\n" +
                         "  %2 = relu %x : f32[N,4]\n" + kTail,
                     3, 16, {"undefined value %2"});
  }
  SECTION("undefined value in return") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,4]\n" +
                         "  return output = %7\n}\n",
                     4, 19, {"undefined value %7"});
  }
  SECTION("written type differs from the inferred one") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,3]\n" + kTail, 3, 8,
                     {"f32[N,3]", "f32[N,4]"});
  }
  SECTION("written dtype differs from the inferred one") {
    expectParseError(std::string(kHead) + "  %1 = reduce_sum %x {axes = [1]} : i32[N]\n" + kTail, 3,
                     8, {"i32[N]", "f32[N]"});
  }
  SECTION("a type too large for int64_t sizes (found by fuzzing)") {
    expectParseError(std::string(kHead) +
                         "  %p = input {name = \"p\"} : f32[4294967296,4294967296]\n"
                         "  %1 = relu %x : f32[N,4]\n" +
                         kTail,
                     3, 55, {"the type f32[4294967296,4294967296] has more than 2^40 elements"});
  }
  SECTION("a param view whose size overflows int64_t (found by fuzzing)") {
    expectParseError(std::string(kHead) + "  %p = input {name = \"p\"} : f32[100]\n" +
                         "  %1 = param %p {offset = 0, shape = [10025000,2025000,2026000]} : "
                         "f32[1]\n" +
                         kTail,
                     4, 8, {"more than 2^40 elements"});
  }
  SECTION("wrong operand count") {
    expectParseError(std::string(kHead) + "  %1 = add %x : f32[N,4]\n" + kTail, 3, 8,
                     {"add takes 2 operands, got 1"});
  }
  SECTION("too many operands") {
    expectParseError(std::string(kHead) + "  %1 = relu %x, %x : f32[N,4]\n" + kTail, 3, 8,
                     {"relu takes 1 operands, got 2"});
  }
  SECTION("operands that do not fit the op") {
    expectParseError(std::string(kHead) +
                         "  %w = input {name = \"w\"} : f32[5,3]\n"
                         "  %1 = matmul %x, %w : f32[N,3]\n" +
                         kTail,
                     4, 8, {"inner dimensions differ", "f32[N,4]", "f32[5,3]"});
  }
  SECTION("bad dtype") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f64[N,4]\n" + kTail, 3, 18,
                     {"unknown dtype", "'f64'"});
  }
  SECTION("bad dtype on an input") {
    expectParseError("graph @g {\n  %x = input {name = \"x\"} : float[N,4]\n" + std::string(kTail),
                     2, 29, {"unknown dtype", "'float'"});
  }
  SECTION("missing closing brace of the graph") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,4]\n" + "  return output = %1\n",
                     5, 1, {"end of input"});
  }
  SECTION("missing closing brace, no return either") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,4]\n", 4, 1, {"end of input"});
  }
  SECTION("missing closing brace of an attribute list") {
    expectParseError(std::string(kHead) + "  %1 = reduce_sum %x {axes = [1] : f32[N]\n" + kTail, 3,
                     34, {"expected ',' or '}'"});
  }
  SECTION("garbage instead of a statement") {
    expectParseError(std::string(kHead) + "  $$$ nonsense\n" + kTail, 3, 3,
                     {"expected '%'", "'$'"});
  }
  SECTION("garbage instead of a graph") {
    expectParseError("hello world\n", 1, 1, {"expected 'graph'"});
  }
  SECTION("garbage after the graph") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,4]\n" + kTail + "trailing junk\n",
                     6, 1, {"unexpected text after the graph"});
  }
  SECTION("bad attribute value") {
    expectParseError(std::string(kHead) +
                         "  %1 = reduce_sum %x {axes = [1], keepdims = maybe} : "
                         "f32[N]\n" +
                         kTail,
                     3, 46, {"bad attribute value", "'maybe'"});
  }
  SECTION("bad dimension") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,x]\n" + kTail, 3, 24,
                     {"expected an integer"});
  }
  SECTION("value defined twice") {
    expectParseError(std::string(kHead) + "  %1 = relu %x : f32[N,4]\n" +
                         "  %1 = exp %x : f32[N,4]\n" + kTail,
                     4, 3, {"%1 is defined twice"});
  }
  SECTION("missing closing brace of a kernel group") {
    expectParseError(std::string(kHead) + "  kernel @k0 elementwise \"r\" {\n" +
                         "    %1 = relu %x : f32[N,4]\n" + kTail,
                     5, 3, {"expected '}' closing kernel @k0"});
  }
  SECTION("kernel groups do not nest") {
    expectParseError(std::string(kHead) + "  kernel @k0 elementwise \"r\" {\n" +
                         "    kernel @k1 elementwise \"s\" {\n" +
                         "    %1 = relu %x : f32[N,4]\n  }\n  }\n" + kTail,
                     4, 11, {"do not nest"});
  }
  SECTION("kernel label that is not @k<index>") {
    expectParseError(std::string(kHead) + "  kernel @foo gemm \"r\" {\n" +
                         "    %1 = relu %x : f32[N,4]\n  }\n" + kTail,
                     3, 11, {"kernel label", "'foo'"});
  }
  SECTION("empty input") { expectParseError("", 1, 1, {"expected 'graph'"}); }
}

// Found by fuzz/ir_fuzz.cpp: `offset = 102e040` parsed as a double, and the
// integer getter converted 1.02e42 to int64_t (undefined behaviour).
TEST_CASE("IR text: an integer attribute written as a huge double", "[ir]") {
  Attrs a{{"big", AttrValue(1.02e42)},
          {"nan", AttrValue(std::nan(""))},
          {"neg", AttrValue(-1e300)},
          {"ok", AttrValue(12.0)}};
  CHECK(a.i("big", 7) == 7);
  CHECK(a.i("nan", 7) == 7);
  CHECK(a.i("neg", 7) == 7);
  CHECK(a.i("ok", 7) == 12);
  auto g = parseGraph(R"(graph @g {
  %params = input {name = "params"} : f32[8]
  %1 = param %params {name = "w", offset = 102e040, shape = [2]} : f32[2]
  return w = %1
})");
  CHECK(!g);
}
