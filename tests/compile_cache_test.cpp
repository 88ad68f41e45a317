// tests/compile_cache_test.cpp - the cpu target's compile cache: a second
// build of the same model takes its code from the cache and computes the same
// bits; damaged, foreign and truncated entries are refused and replaced; a
// cache that cannot be written costs nothing but the note; builds that race
// for the same entry both succeed and leave a valid one.
#include "driver/Compile.h"

#include "Isas.h"
#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <fstream>
#include <random>
#include <thread>

using namespace graphc;
namespace fs = std::filesystem;

namespace {

/// A small MLP (Linear 1024->40->30->10) under Adagrad.
nn::ModelSpec smallMlp() {
  for (auto &[name, spec] : test::coverageModels())
    if (name == "small relu mlp")
      return spec;
  FAIL("no small relu mlp among the coverage models");
  return {};
}

struct Built {
  std::string describe;     ///< the model line's target part
  std::vector<float> after; ///< loss, then every parameter after two steps
};

/// Builds smallMlp for the cpu target under `isa` with cache folder `dir`
/// ("" : none) and takes two steps on fixed batches; without Catch2's
/// assertions, so that threads may call it.
Expected<Built> tryBuild(const std::string &dir, const std::string &isa = "") {
  driver::BuildOptions o;
  o.target = "cpu";
  o.cpu = isa;
  o.maxBatch = 8;
  o.cacheDir = dir;
  auto exe = driver::build(smallMlp(), {1, 32, 32}, o);
  if (!exe)
    return exe.diag();
  Built b{(*exe)->describe(), {}};
  std::mt19937 rng(5);
  for (int s = 0; s < 2; ++s) {
    auto x = test::randomTensor({8, 1, 32, 32}, rng, 0, 1);
    auto l = test::randomLabels(8, 10, rng);
    std::vector<float> xs(x.data.begin(), x.data.end());
    std::vector<int32_t> ls(l.data.begin(), l.data.end());
    float loss = 0;
    if (Status st = (*exe)->trainStep(xs.data(), ls.data(), 8, &loss, nullptr); !st)
      return st.diag();
    b.after.push_back(loss);
  }
  const float *p = (*exe)->params();
  b.after.insert(b.after.end(), p, p + (*exe)->info().numParams);
  return b;
}

Built buildAndStep(const std::string &dir, const std::string &isa = "") {
  auto b = tryBuild(dir, isa);
  INFO((b ? "" : b.diag().str()));
  REQUIRE(bool(b));
  return *b;
}

std::vector<fs::path> entries(const fs::path &dir) {
  std::vector<fs::path> out;
  if (fs::exists(dir))
    for (const auto &e : fs::directory_iterator(dir))
      out.push_back(e.path());
  return out;
}

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("the compile cache gives the same code, and refuses entries that do not check out",
          "[cpu][cache]") {
  test::TempDir tmp("graphc-cache");
  const fs::path dir = tmp.path / "cache";
  const Built plain = buildAndStep("");
  CHECK(contains(plain.describe, "code compiled in"));

  const Built first = buildAndStep(dir.string());
  INFO(first.describe);
  CHECK(contains(first.describe, "code compiled and cached in"));
  auto files = entries(dir);
  REQUIRE(files.size() == 1);
  CHECK(files[0].extension() == ".o");
  CHECK(first.after == plain.after);

  const Built second = buildAndStep(dir.string());
  INFO(second.describe);
  CHECK(contains(second.describe, "code from the cache in"));
  CHECK(second.after == plain.after);

  const fs::path entry = files[0];
  const auto size = fs::file_size(entry);
  auto damage = [&](const std::function<void(std::string &)> &how) {
    std::ifstream in(entry, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    how(bytes);
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << bytes;
  };
  struct Case {
    const char *what, *says;
    std::function<void(std::string &)> how;
  };
  for (const Case &c :
       {Case{"a flipped byte in the code", "is damaged: replaced",
             [](std::string &b) { b[b.size() - 100] ^= 0x10; }},
        Case{"truncated", "is not one of graphc's: replaced",
             [](std::string &b) { b.resize(b.size() / 2); }},
        Case{"foreign bytes", "is not one of graphc's: replaced",
             [](std::string &b) { b = "#!/bin/sh\necho not an object\n"; }},
        Case{"another key", "is not one of graphc's: replaced",
             [](std::string &b) { b[8] ^= 1; }}}) {
    INFO(c.what);
    damage(c.how);
    const Built again = buildAndStep(dir.string());
    INFO(again.describe);
    CHECK(contains(again.describe, "code compiled and cached in"));
    CHECK(contains(again.describe, c.says));
    CHECK(again.after == plain.after);
    // Replaced by a whole, valid entry: the next build hits.
    CHECK(fs::file_size(entry) == size);
    CHECK(contains(buildAndStep(dir.string()).describe, "code from the cache in"));
  }
  CHECK(entries(dir).size() == 1); // no temp file left behind
}

TEST_CASE("a compile cache that cannot be written costs only a note", "[cpu][cache]") {
  test::TempDir tmp("graphc-cache");
  std::ofstream(tmp.path / "file") << "a file, not a folder";
  const Built b = buildAndStep((tmp.path / "file" / "cache").string());
  INFO(b.describe);
  CHECK(contains(b.describe, "code compiled and cached in"));
  CHECK(contains(b.describe, "cannot create the cache folder"));
  CHECK(b.after == buildAndStep("").after);
}

TEST_CASE("builds racing for one cache entry both succeed and leave a valid one",
          "[cpu][cache]") {
  test::TempDir tmp("graphc-cache");
  const std::string dir = (tmp.path / "cache").string();
  std::optional<Expected<Built>> a, b;
  std::thread t1([&] { a = tryBuild(dir); });
  std::thread t2([&] { b = tryBuild(dir); });
  t1.join();
  t2.join();
  REQUIRE((a && *a && b && *b));
  CHECK((**a).after == (**b).after);
  CHECK(entries(dir).size() == 1);
  CHECK(contains(buildAndStep(dir).describe, "code from the cache in"));
}

TEST_CASE("each vector ISA has its own cache entry", "[cpu][cache]") {
  test::TempDir tmp("graphc-cache");
  const std::string dir = (tmp.path / "cache").string();
  std::vector<std::string> isas = test::runnableIsas();
  for (const std::string &isa : isas)
    CHECK(contains(buildAndStep(dir, isa).describe, "code compiled and cached in"));
  CHECK(entries(dir).size() == isas.size());
  for (const std::string &isa : isas)
    CHECK(contains(buildAndStep(dir, isa).describe, "from the cache"));
}
