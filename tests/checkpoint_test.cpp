// tests/checkpoint_test.cpp - safetensors checkpoints: byte-exact round trips,
// the header parsed independently, atomic writes, and every load error.
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "runtime/Checkpoint.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace graphc;
using namespace graphc::runtime;
using namespace graphc::driver;
namespace fs = std::filesystem;
using nlohmann::json;

using test::TempDir;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

/// View(16), Linear(16, 8), ReLU, Linear(8, 3), LogSoftMax with `optimizer`.
std::unique_ptr<Executable> tinyExe(const std::string &optimizer = "adagrad") {
  nn::ModelSpec spec;
  spec.model.add(nn::View(16))
      .add(nn::Linear(16, 8))
      .add(nn::ReLU())
      .add(nn::Linear(8, 3))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{};
  spec.optimizer = nn::Optimizer{optimizer, {}, {}};
  spec.file = "tiny.model";
  BuildOptions o;
  o.target = "interp";
  o.maxBatch = 8;
  auto exe = build(spec, {1, 4, 4}, o);
  REQUIRE(exe);
  return std::move(*exe);
}

/// Fills parameters and every state buffer with random values; step 17.
void randomise(Executable &exe, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2, 2);
  for (int64_t i = 0; i < exe.info().numParams; ++i)
    exe.params()[i] = u(rng);
  for (const std::string &slot : exe.info().stateSlots)
    for (int64_t i = 0; i < exe.info().numParams; ++i)
      exe.state(slot)[i] = std::abs(u(rng));
  exe.setStep(17);
}

bool sameBuffers(Executable &a, Executable &b) {
  size_t bytes = size_t(a.info().numParams) * 4;
  if (std::memcmp(a.params(), b.params(), bytes) != 0)
    return false;
  for (const std::string &slot : a.info().stateSlots)
    if (std::memcmp(a.state(slot), b.state(slot), bytes) != 0)
      return false;
  return true;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[size_t(i)] = char(v >> (8 * i));
  return s;
}

/// A safetensors file from a JSON header and data, put together by hand.
std::string handMade(const json &header, const std::string &data) {
  std::string h = header.dump();
  return le64(h.size()) + h + data;
}

std::string loadError(const std::string &path, Executable &exe) {
  auto r = loadCheckpoint(path, exe);
  if (r)
    return "";
  return r.diag().str();
}

bool contains(const std::string &s, const std::string &part) {
  INFO(s);
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a checkpoint's header, parsed independently, is PyTorch's state_dict", "[checkpoint]") {
  TempDir d;
  auto exe = tinyExe();
  randomise(*exe, 1);
  REQUIRE(saveCheckpoint(d / "c.safetensors", *exe, 3, 42));
  std::string bytes = readFile(d / "c.safetensors");
  REQUIRE(bytes.size() > 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = n << 8 | uint8_t(bytes[size_t(i)]);
  REQUIRE(8 + n <= bytes.size());
  CHECK((8 + n) % 8 == 0); // data 8-aligned, as the reference writer does
  json h = json::parse(bytes.substr(8, n));
  std::string data = bytes.substr(8 + n);

  struct Want {
    std::string name;
    std::vector<int64_t> shape;
    const float *src;
  };
  const float *p = exe->params(), *v = exe->state("v");
  std::vector<Want> want = {{"1.weight", {8, 16}, p},
                            {"1.bias", {8}, p + 128},
                            {"3.weight", {3, 8}, p + 136},
                            {"3.bias", {3}, p + 160},
                            {"optim.v.1.weight", {8, 16}, v},
                            {"optim.v.1.bias", {8}, v + 128},
                            {"optim.v.3.weight", {3, 8}, v + 136},
                            {"optim.v.3.bias", {3}, v + 160}};
  CHECK(h.size() == want.size() + 1);
  uint64_t covered = 0;
  for (const Want &w : want) {
    INFO(w.name);
    REQUIRE(h.contains(w.name));
    CHECK(h[w.name]["dtype"] == "F32");
    CHECK(h[w.name]["shape"].get<std::vector<int64_t>>() == w.shape);
    uint64_t b = h[w.name]["data_offsets"][0], e = h[w.name]["data_offsets"][1];
    int64_t numel = 1;
    for (int64_t s : w.shape)
      numel *= s;
    REQUIRE(e - b == uint64_t(numel) * 4);
    REQUIRE(e <= data.size());
    CHECK(std::memcmp(data.data() + b, w.src, e - b) == 0);
    covered += e - b;
  }
  CHECK(covered == data.size()); // no holes, no overlap
  json m = h["__metadata__"];
  CHECK(m["graphc.step"] == "17");
  CHECK(m["graphc.epoch"] == "3");
  CHECK(m["graphc.seed"] == "42");
  CHECK(m["graphc.model"] == "tiny");
  CHECK(m["graphc.optimizer"] == exe->info().optimizer.str());
  CHECK(m["format"] == "pt");
}

TEST_CASE("checkpoints round-trip byte for byte", "[checkpoint]") {
  TempDir d;
  for (std::string opt : {"adagrad", "adam", "sgd", "rmsprop", "adadelta", "nag"}) {
    INFO(opt);
    auto a = tinyExe(opt), b = tinyExe(opt);
    randomise(*a, 7);
    REQUIRE(saveCheckpoint(d / "a", *a, 2, 5, {{"graphc.normalize_mean", "0.25"}}));
    auto info = loadCheckpoint(d / "a", *b);
    REQUIRE(info);
    CHECK(info->epoch == 2);
    CHECK(info->step == 17);
    CHECK(info->hasSeed);
    CHECK(info->seed == 5);
    CHECK(info->hasOptimizerState == !a->info().stateSlots.empty());
    CHECK(info->metadata.at("graphc.normalize_mean") == "0.25");
    CHECK(b->step() == 17);
    CHECK(sameBuffers(*a, *b));
    REQUIRE(saveCheckpoint(d / "b", *b, 2, 5, {{"graphc.normalize_mean", "0.25"}}));
    CHECK(readFile(d / "a") == readFile(d / "b"));
    std::vector<TensorRef> none;
    CHECK(readFile(d / "a").size() > encodeSafetensors(none, {}).size());
  }
}

TEST_CASE("writes are atomic: no temporary left, a failed write keeps the old file",
          "[checkpoint]") {
  TempDir d;
  auto exe = tinyExe();
  randomise(*exe, 3);
  std::string path = d / "ckpt.safetensors";
  REQUIRE(saveCheckpoint(path, *exe, 1, 1));
  REQUIRE(saveCheckpoint(path, *exe, 2, 1)); // over an existing file
  std::vector<std::string> names;
  for (auto &e : fs::directory_iterator(d.path))
    names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"ckpt.safetensors"});
  std::string before = readFile(path);

  // The temporary cannot be created: the old file stays, nothing else appears.
  fs::create_directory(path + ".tmp." + std::to_string(::getpid()));
  exe->params()[0] += 1;
  Status s = saveCheckpoint(path, *exe, 3, 1);
  REQUIRE(!s);
  CHECK(contains(s.diag().str(), path));
  CHECK(readFile(path) == before);
  fs::remove(path + ".tmp." + std::to_string(::getpid()));

  // A directory that does not exist.
  Status s2 = saveCheckpoint(d / "no/such/dir/c", *exe, 3, 1);
  REQUIRE(!s2);
  CHECK(contains(s2.diag().str(), "No such file or directory"));
  CHECK(!fs::exists(d / "no"));

  // A directory that is not writable (root may write anyway).
  if (::geteuid() != 0) {
    fs::permissions(d.path, fs::perms::owner_read | fs::perms::owner_exec);
    Status s3 = saveCheckpoint(path, *exe, 3, 1);
    fs::permissions(d.path, fs::perms::owner_all);
    REQUIRE(!s3);
    CHECK(contains(s3.diag().str(), "Permission denied"));
    CHECK(readFile(path) == before);
  }
  names.clear();
  for (auto &e : fs::directory_iterator(d.path))
    names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("outputs that are not regular files: links followed, streams written through, "
          "nothing else replaced",
          "[checkpoint]") {
  TempDir d;
  const std::string text = "graphc output\n";
  auto write = [&](const std::string &path) {
    return writeFileAtomic(path, text.data(), text.size());
  };
  // A symlink stays a symlink; its target is replaced, the temporary beside it.
  fs::create_directory(d / "elsewhere");
  std::ofstream(d / "elsewhere/target") << "old";
  fs::create_symlink(d / "elsewhere/target", d / "link");
  REQUIRE(write(d / "link"));
  CHECK(fs::is_symlink(d / "link"));
  CHECK(readFile(d / "elsewhere/target") == text);
  CHECK(std::distance(fs::directory_iterator(d / "elsewhere"), fs::directory_iterator()) == 1);
  // A relative link whose target does not exist yet: the target is created.
  fs::create_symlink("new-target", d / "dangling");
  REQUIRE(write(d / "dangling"));
  CHECK(fs::is_symlink(d / "dangling"));
  CHECK(readFile(d / "new-target") == text);
  // A directory is refused and stays a directory.
  fs::create_directory(d / "dir");
  Status dir = write(d / "dir");
  REQUIRE(!dir);
  CHECK(contains(dir.diag().str(), "it is a directory"));
  CHECK(fs::is_directory(d / "dir"));
  // /dev/null is written through and stays a device; /dev/full reports the
  // error and stays a device (as root, a rename would have replaced it).
  REQUIRE(write("/dev/null"));
  CHECK(fs::is_character_file("/dev/null"));
  if (fs::exists("/dev/full")) {
    Status full = write("/dev/full");
    REQUIRE(!full);
    CHECK(contains(full.diag().str(), "No space left on device"));
    CHECK(fs::is_character_file("/dev/full"));
  }
  // A FIFO is written through to its reader.
  std::string fifo = d / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);
    got.assign(std::istreambuf_iterator<char>(in), {});
  });
  Status piped = write(fifo);
  reader.join();
  REQUIRE(piped);
  CHECK(got == text);
  CHECK(fs::is_fifo(fifo));
  // No temporaries anywhere.
  for (auto &e : fs::recursive_directory_iterator(d.path))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

namespace {

/// The PID of a process that has just ended (reaped), for stale temporaries.
pid_t deadPid() {
  pid_t pid = ::fork();
  if (pid == 0)
    ::_exit(0);
  REQUIRE(pid > 0);
  REQUIRE(::waitpid(pid, nullptr, 0) == pid);
  return pid;
}

std::vector<std::string> fileNames(const fs::path &dir) {
  std::vector<std::string> names;
  for (auto &e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace

TEST_CASE("a save removes the temporaries of dead processes, and only those", "[checkpoint]") {
  TempDir d;
  auto exe = tinyExe();
  randomise(*exe, 2);
  std::string path = d / "ckpt";
  std::string dead = std::to_string(deadPid());
  for (const std::string &name :
       {"ckpt.tmp." + dead, "other.tmp." + dead, std::string("ckpt.tmp.1"),
        "ckpt.tmp." + dead + "x", "ckpt.tmp.-" + dead})
    writeFile(d / name, "stale");
  fs::create_directory(d / ("ckpt.tmp.9" + dead)); // not a regular file: kept, dead or not
  REQUIRE(saveCheckpoint(path, *exe, 1, 1));
  // Gone: the dead process's temporary of this file. Kept: another file's,
  // a live process's (PID 1), names that are not NAME.tmp.PID, directories.
  std::vector<std::string> kept = {"ckpt",
                                   "ckpt.tmp.-" + dead,
                                   "ckpt.tmp.1",
                                   "ckpt.tmp.9" + dead,
                                   "ckpt.tmp." + dead + "x",
                                   "other.tmp." + dead};
  std::sort(kept.begin(), kept.end());
  CHECK(fileNames(d.path) == kept);
  auto back = tinyExe();
  REQUIRE(loadCheckpoint(path, *back));
  CHECK(sameBuffers(*exe, *back));
}

TEST_CASE("SIGINT and SIGTERM during a save remove the temporary", "[checkpoint]") {
  for (int sig : {SIGTERM, SIGINT}) {
    INFO("signal " << sig);
    TempDir d;
    std::string path = d / "big", tmp;
    std::fflush(nullptr);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) { // saves 64 MB over and over until the signal ends it
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
      std::vector<char> big(size_t(64) << 20, 'x');
      for (;;)
        if (!writeFileAtomic(path, big.data(), big.size()))
          ::_exit(3);
    }
    struct Reaper { // a failed REQUIRE leaves no child writing forever
      pid_t pid;
      ~Reaper() {
        if (pid > 0 && ::kill(pid, SIGKILL) == 0)
          ::waitpid(pid, nullptr, 0);
      }
    } reaper{child};
    tmp = path + ".tmp." + std::to_string(child);
    // Stop the child while its temporary exists; the signal, sent while it
    // is stopped, is the first thing it handles when it continues.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    auto waitFor = [&](const std::string &file) {
      while (!fs::exists(file) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      return fs::exists(file);
    };
    REQUIRE(waitFor(path)); // one save done
    bool caught = false;
    for (int tries = 0; tries < 2000 && !caught; ++tries) {
      REQUIRE(waitFor(tmp));
      REQUIRE(::kill(child, SIGSTOP) == 0);
      int status = 0;
      REQUIRE(::waitpid(child, &status, WUNTRACED) == child);
      REQUIRE(WIFSTOPPED(status));
      caught = fs::exists(tmp);
      if (!caught)
        ::kill(child, SIGCONT);
    }
    REQUIRE(caught);
    REQUIRE(::kill(child, sig) == 0);
    REQUIRE(::kill(child, SIGCONT) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    reaper.pid = 0;
    CHECK(WIFSIGNALED(status)); // the default disposition: the signal ends it
    CHECK((WIFSIGNALED(status) ? WTERMSIG(status) : -1) == sig);
    CHECK(!fs::exists(tmp));
    CHECK(fileNames(d.path) == std::vector<std::string>{"big"});
    CHECK(fs::file_size(path) == size_t(64) << 20); // the last complete save
  }
}

TEST_CASE("a plain PyTorch state_dict loads with fresh optimizer state", "[checkpoint]") {
  TempDir d;
  auto src = tinyExe();
  randomise(*src, 11);
  std::vector<TensorRef> tensors;
  for (const frontend::ParamInfo &p : src->info().params)
    tensors.push_back({p.name, "F32", p.shape, src->params() + p.offset, size_t(p.numel()) * 4});
  REQUIRE(writeSafetensors(d / "sd", tensors, {}));
  auto dst = tinyExe();
  randomise(*dst, 12);
  auto info = loadCheckpoint(d / "sd", *dst);
  REQUIRE(info);
  CHECK(!info->hasOptimizerState);
  CHECK(info->epoch == 0);
  CHECK(info->step == 0);
  CHECK(dst->step() == 0);
  CHECK(std::memcmp(dst->params(), src->params(), size_t(src->info().numParams) * 4) == 0);
  for (int64_t i = 0; i < dst->info().numParams; ++i)
    REQUIRE(dst->state("v")[i] == 0.0f);
}

TEST_CASE("eval loads ignore optimizer state, even another optimizer's", "[checkpoint]") {
  TempDir d;
  auto adam = tinyExe("adam");
  randomise(*adam, 4);
  REQUIRE(saveCheckpoint(d / "c", *adam, 1, 1));
  auto ada = tinyExe("adagrad");
  std::string err = loadError(d / "c", *ada);
  CHECK(contains(err, "optimizer state that this model's optim.adagrad"));
  CHECK(contains(err, "saved with optim.adam"));
  auto r = loadCheckpoint(d / "c", *ada, /*optimizerState=*/false);
  REQUIRE(r);
  CHECK(std::memcmp(ada->params(), adam->params(), size_t(adam->info().numParams) * 4) == 0);
}

TEST_CASE("checkpoint load errors name the file and the tensor", "[checkpoint]") {
  TempDir d;
  auto exe = tinyExe();
  randomise(*exe, 5);
  REQUIRE(saveCheckpoint(d / "good", *exe, 1, 1));
  std::string good = readFile(d / "good");
  auto target = tinyExe();
  randomise(*target, 6);
  std::vector<float> before(target->params(), target->params() + target->info().numParams);

  auto check = [&](const std::string &name, const std::string &bytes, const std::string &message) {
    INFO(name);
    writeFile(d / name, bytes);
    std::string err = loadError(d / name, *target);
    CHECK(contains(err, d / name + ": error: "));
    CHECK(contains(err, message));
    // A failed load changes nothing.
    CHECK(std::memcmp(target->params(), before.data(), before.size() * 4) == 0);
    CHECK(target->step() == 17);
  };
  std::vector<float> w1(128, 0.5f), b1(8, 0.5f), w3(24, 0.5f), b3(3, 0.5f);
  std::string data = std::string((char *)w1.data(), 512) + std::string((char *)b1.data(), 32) +
                     std::string((char *)w3.data(), 96) + std::string((char *)b3.data(), 12);
  json h = {{"1.weight", {{"dtype", "F32"}, {"shape", {8, 16}}, {"data_offsets", {0, 512}}}},
            {"1.bias", {{"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {512, 544}}}},
            {"3.weight", {{"dtype", "F32"}, {"shape", {3, 8}}, {"data_offsets", {544, 640}}}},
            {"3.bias", {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {640, 652}}}}};
  {
    writeFile(d / "hand", handMade(h, data));
    auto other = tinyExe();
    REQUIRE(loadCheckpoint(d / "hand", *other)); // the hand-made file itself is fine
    CHECK(other->params()[0] == 0.5f);
  }
  json missing = h;
  missing.erase("1.bias");
  missing["3.weight"]["data_offsets"] = {512, 608};
  missing["3.bias"]["data_offsets"] = {608, 620};
  check("missing", handMade(missing, data.substr(0, 512) + data.substr(544)),
        "tensor '1.bias' [8] is missing");
  json shape = h;
  shape["3.weight"]["shape"] = {8, 3};
  check("shape", handMade(shape, data),
        "tensor '3.weight' has shape [8,3], but the model's "
        "3.weight is [3,8]");
  json dtype = h;
  dtype["3.bias"]["dtype"] = "I32";
  check("dtype", handMade(dtype, data), "tensor '3.bias' is I32; graphc needs F32");
  json unknownDtype = h;
  unknownDtype["3.bias"]["dtype"] = "Q7";
  check("unknown-dtype", handMade(unknownDtype, data), "unknown dtype \"Q7\"");
  json extra = h;
  extra["5.weight"] = {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {652, 664}}};
  check("extra", handMade(extra, data + data.substr(640)),
        "tensor '5.weight' does not belong to the model");
  json outside = h;
  outside["3.bias"]["data_offsets"] = {640, 656};
  check("outside", handMade(outside, data), "lie outside the 652 data bytes");
  json wrongSize = h;
  wrongSize["3.bias"]["data_offsets"] = {636, 652};
  check("wrong-size", handMade(wrongSize, data), "hold 16 bytes, but F32 [3] needs 12");
  json negative = h;
  negative["3.bias"]["data_offsets"] = {-4, 8};
  check("negative", handMade(negative, data), "is not [begin, end]");
  json badMeta = h;
  badMeta["__metadata__"] = {{"graphc.step", 3}};
  check("meta-type", handMade(badMeta, data), "metadata 'graphc.step' is not a string");
  badMeta["__metadata__"] = {{"graphc.step", "three"}};
  check("meta-int", handMade(badMeta, data), "metadata graphc.step is 'three'");
  check("truncated", good.substr(0, good.size() - 3), "lie outside");
  check("short", "abc", "too short for a safetensors file");
  check("empty", "", "too short");
  check("header-beyond", le64(1000) + "{}", "header length 1000 is beyond the end");
  check("header-absurd", le64(uint64_t(1) << 62) + std::string(16, ' '), "beyond the end");
  std::string bigHeader(size_t(101) << 20, ' ');
  check("header-huge", le64(bigHeader.size()) + bigHeader, "is absurd");
  check("bad-json", le64(10) + "{\"a\": [1,2", "not valid JSON");
  check("not-object", le64(2) + "[]", "not a JSON object");
  check("entry-not-object", handMade({{"1.weight", 3}}, ""), "expected an object");
  json hugeShape = h;
  hugeShape["1.weight"]["shape"] = {uint64_t(1) << 40, uint64_t(1) << 40};
  check("huge-shape", handMade(hugeShape, data), "absurdly large");
  writeFile(d / "x", "");
  CHECK(contains(loadError(d / "does-not-exist", *target), "cannot open"));
  CHECK(contains(loadError(d.path.string(), *target), "not a regular file"));
}

TEST_CASE("the reader follows the safetensors rules: exact cover, unique names, a JSON object",
          "[checkpoint]") {
  TempDir d;
  auto target = tinyExe();
  auto error = [&](const std::string &name, const std::string &bytes) {
    writeFile(d / name, bytes);
    return loadError(d / name, *target);
  };
  std::string data(652, '\0'); // zeros: finite
  json h = {{"1.weight", {{"dtype", "F32"}, {"shape", {8, 16}}, {"data_offsets", {0, 512}}}},
            {"1.bias", {{"dtype", "F32"}, {"shape", {8}}, {"data_offsets", {512, 544}}}},
            {"3.weight", {{"dtype", "F32"}, {"shape", {3, 8}}, {"data_offsets", {544, 640}}}},
            {"3.bias", {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {640, 652}}}}};
  CHECK(error("good", handMade(h, data)) == "");
  json overlap = h;
  overlap["3.bias"]["data_offsets"] = {636, 648};
  CHECK(contains(error("overlap", handMade(overlap, data)),
                 "tensor '3.bias' (data_offsets [636, 648]) overlaps tensor '3.weight' "
                 "(data_offsets [544, 640])"));
  json same = h;
  same["3.bias"]["data_offsets"] = {0, 12}; // inside 1.weight
  CHECK(contains(error("same-start", handMade(same, data)), "overlaps"));
  json gap = h;
  gap["3.bias"]["data_offsets"] = {644, 656};
  CHECK(contains(error("gap", handMade(gap, data + std::string(4, '\0'))),
                 "bytes [640, 644) of the data belong to no tensor (a gap before tensor "
                 "'3.bias')"));
  CHECK(contains(error("trailing", handMade(h, data + "tail")),
                 "4 bytes after the last tensor's data (the tensors cover 652 of the 656 data "
                 "bytes)"));
  // Two equal names: nlohmann would keep the last one silently.
  std::string text = h.dump();
  std::string twice =
      "{\"3.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[640,652]}," + text.substr(1);
  CHECK(contains(error("duplicate", le64(twice.size()) + twice + data),
                 "the name '3.bias' appears twice in the header"));
  std::string meta = text.substr(0, text.size() - 1) +
                     ",\"__metadata__\":{\"graphc.step\":\"1\",\"graphc.step\":\"9\"}}";
  CHECK(contains(error("duplicate-meta", le64(meta.size()) + meta + data),
                 "the name 'graphc.step' appears twice"));
  CHECK(contains(error("leading-space", le64(text.size() + 1) + " " + text + data),
                 "does not start with '{'"));
  // Trailing spaces pad the header, as the reference writer does.
  CHECK(error("padded", le64(text.size() + 5) + text + "     " + data) == "");
}

TEST_CASE("NaN or infinite weights are an error naming the tensor, or a warning when allowed",
          "[checkpoint]") {
  TempDir d;
  auto exe = tinyExe();
  randomise(*exe, 9);
  exe->params()[17] = NAN;            // 1.weight[1, 1]
  exe->params()[160 + 2] = INFINITY;  // 3.bias[2]
  exe->params()[160 + 1] = -INFINITY; // 3.bias[1]
  REQUIRE(saveCheckpoint(d / "nan", *exe, 1, 1));
  auto target = tinyExe();
  randomise(*target, 10);
  std::vector<float> before(target->params(), target->params() + target->info().numParams);
  std::string err = loadError(d / "nan", *target);
  CHECK(contains(err, d / "nan: error: tensor '1.weight' holds 1 non-finite value (the first, "
                          "NaN, at [1,1])"));
  CHECK(contains(err, "--allow-nonfinite loads it anyway"));
  CHECK(std::memcmp(target->params(), before.data(), before.size() * 4) == 0);

  auto allowed = loadCheckpoint(d / "nan", *target, true, /*allowNonfinite=*/true);
  REQUIRE(allowed);
  REQUIRE(allowed->warnings.size() == 2);
  CHECK(contains(allowed->warnings[0], "tensor '1.weight' holds 1 non-finite value"));
  CHECK(contains(allowed->warnings[1],
                 "tensor '3.bias' holds 2 non-finite values (the first, -inf, at [1])"));
  CHECK(std::isnan(target->params()[17]));

  // Optimizer state is checked when it is loaded (train --resume), not for eval.
  auto clean = tinyExe();
  randomise(*clean, 11);
  clean->state("v")[130] = NAN; // optim.v.1.bias[2]
  REQUIRE(saveCheckpoint(d / "state", *clean, 1, 1));
  CHECK(contains(loadError(d / "state", *target),
                 "tensor 'optim.v.1.bias' holds 1 non-finite value (the first, NaN, at [2])"));
  CHECK(loadCheckpoint(d / "state", *target, /*optimizerState=*/false));
}

TEST_CASE("damaged checkpoints give errors, never crashes", "[checkpoint]") {
  TempDir d;
  auto exe = tinyExe();
  randomise(*exe, 8);
  REQUIRE(saveCheckpoint(d / "good", *exe, 1, 1));
  std::string good = readFile(d / "good");
  std::mt19937 rng(1);
  auto target = tinyExe();
  int failed = 0;
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    if (i % 3 == 0) {
      bad.resize(rng() % good.size());
    } else {
      // Damage the header, where structure lives, more often than the data.
      size_t span = i % 3 == 1 ? std::min<size_t>(good.size(), 600) : good.size();
      for (int k = 0; k < 1 + int(rng() % 4); ++k)
        bad[rng() % span] = char(rng());
    }
    writeFile(d / "bad", bad);
    auto r = loadCheckpoint(d / "bad", *target);
    if (!r) {
      ++failed;
      CHECK(contains(r.diag().str(), d / "bad: error: "));
    }
  }
  CHECK(failed > 100);
}
