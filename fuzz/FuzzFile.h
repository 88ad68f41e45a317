// fuzz/FuzzFile.h - the file readers take paths: a fuzz input is written to
// a temporary file of this process first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace graphc::fuzz {

/// Writes `size` bytes to `$TMPDIR/graphc-fuzz-PID-TAG` (or /tmp) and
/// returns its path; the same path is reused by every input.
inline std::string writeTemp(const std::string &tag, const uint8_t *data, size_t size) {
  const char *dir = std::getenv("TMPDIR");
  std::string path = std::string(dir && *dir ? dir : "/tmp") + "/graphc-fuzz-" +
                     std::to_string(getpid()) + "-" + tag;
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    std::abort();
  if (size && std::fwrite(data, 1, size, f) != size)
    std::abort();
  std::fclose(f);
  return path;
}

} // namespace graphc::fuzz
