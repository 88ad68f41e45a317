// driver/Memory.cpp - the memory estimate and the limits it is checked against.
#include "driver/Memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

namespace graphc::driver {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

/// a * b and a + b that stop at 2^64 - 1 instead of wrapping around.
uint64_t mul(uint64_t a, uint64_t b) { return b != 0 && a > kMax / b ? kMax : a * b; }
uint64_t add(uint64_t a, uint64_t b) { return a > kMax - b ? kMax : a + b; }

/// A number of bytes from a /proc-style "Key:   123 kB" line of `file`; 0 if absent.
uint64_t procKb(const char *file, const std::string &key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream fields(line.substr(key.size() + 1));
      uint64_t kb = 0;
      fields >> kb;
      return mul(kb, 1024);
    }
  return 0;
}

/// The number in a cgroup file ("max" or nothing: 0).
uint64_t cgroupValue(const std::string &file) {
  std::ifstream in(file);
  uint64_t v = 0;
  if (!(in >> v))
    return 0;
  return v;
}

/// This process's cgroup (v2) folder, or "" when there is none.
std::string cgroupDir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0)
      return "/sys/fs/cgroup" + line.substr(3);
  return "";
}

} // namespace

uint64_t MemoryEstimate::total() const {
  return add(add(add(params, optimizerState), add(stepArena, predictArena)), other);
}

std::string formatBytes(uint64_t bytes) {
  const double b = double(bytes);
  if (bytes < 1024)
    return fmt::format("{} bytes", bytes);
  if (b < 1024.0 * 1024)
    return fmt::format("{:.1f} KiB", b / 1024);
  if (b < 1024.0 * 1024 * 1024)
    return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  return fmt::format("{:.1f} GiB", b / (1024.0 * 1024 * 1024));
}

std::string MemoryEstimate::str() const {
  std::string s = fmt::format("{}: parameters {}", formatBytes(total()), formatBytes(params));
  if (slots > 0)
    s += fmt::format(", optimizer state {} ({} slot{})", formatBytes(optimizerState), slots,
                     slots == 1 ? "" : "s");
  if (stepArena > 0)
    s += fmt::format(", training step's intermediates at batch {} {}", batch,
                     formatBytes(stepArena));
  s += fmt::format(", evaluation's intermediates at batch {} {}", batch, formatBytes(predictArena));
  s += fmt::format(", other buffers {}", formatBytes(other));
  return s;
}

MemoryEstimate estimateMemory(const runtime::CompiledModel &m) {
  MemoryEstimate e;
  uint64_t paramBytes = mul(uint64_t(std::max<int64_t>(m.info.numParams, 0)), 4);
  e.batch = m.trainable() ? m.stepPlan.batch : m.predictPlan.batch;
  e.params = paramBytes;
  e.slots = m.trainable() ? int(m.info.stateSlots.size()) : 0;
  e.optimizerState = mul(paramBytes, uint64_t(e.slots));
  e.stepArena = m.trainable() ? uint64_t(std::max<int64_t>(m.stepPlan.arenaBytes, 0)) : 0;
  e.predictArena = uint64_t(std::max<int64_t>(m.predictPlan.arenaBytes, 0));
  // The output buffer (batch x classes floats) and the initial parameter
  // values, made whole before they are copied into the executable.
  e.other = add(mul(mul(uint64_t(std::max<int64_t>(e.batch, 1)),
                        uint64_t(std::max<int64_t>(m.info.classes, 1))),
                    4),
                paramBytes);
  return e;
}

MemoryLimit memoryLimit(uint64_t maxMemory) {
  if (maxMemory > 0)
    return {maxMemory, fmt::format("--max-memory {}", formatBytes(maxMemory))};
  MemoryLimit best;
  auto consider = [&](uint64_t bytes, std::string source) {
    if (bytes > 0 && (best.bytes == 0 || bytes < best.bytes))
      best = {bytes, std::move(source)};
  };
  uint64_t available = procKb("/proc/meminfo", "MemAvailable");
  if (available == 0) {
    long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
      available = mul(uint64_t(pages), uint64_t(page));
  }
  consider(available,
           fmt::format("the {} of memory available on this machine", formatBytes(available)));
  struct rlimit as;
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    uint64_t used = procKb("/proc/self/status", "VmSize");
    uint64_t left = as.rlim_cur > used ? as.rlim_cur - used : 1;
    consider(left, fmt::format("the {} left under the address-space limit (ulimit -v) of {}",
                               formatBytes(left), formatBytes(as.rlim_cur)));
  }
  std::string cg = cgroupDir();
  if (!cg.empty()) {
    uint64_t max = cgroupValue(cg + "/memory.max"), current = cgroupValue(cg + "/memory.current");
    if (max > 0) {
      uint64_t left = max > current ? max - current : 1;
      consider(left, fmt::format("the {} left under this control group's memory.max of {}",
                                 formatBytes(left), formatBytes(max)));
    }
  }
  return best;
}

Status checkMemory(const MemoryEstimate &estimate, const MemoryLimit &limit) {
  if (limit.bytes == 0 || estimate.total() <= limit.bytes)
    return {};
  return error(fmt::format("the model needs about {}, more than {}. Use a smaller model or "
                           "batch, or set another limit with --max-memory",
                           estimate.str(), limit.source));
}

} // namespace graphc::driver
