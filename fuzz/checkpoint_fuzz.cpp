// fuzz/checkpoint_fuzz.cpp - the safetensors reader on any bytes. What it
// accepts must keep every tensor inside the data section.
#include "fuzz/FuzzFile.h"
#include "runtime/Checkpoint.h"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = graphc::fuzz::writeTemp("ckpt.safetensors", data, size);
  auto file = graphc::runtime::readSafetensors(path);
  std::remove(path.c_str());
  if (!file)
    return 0;
  for (const auto &[name, e] : file->tensors) {
    if (e.begin > e.end || e.end > file->data.size())
      std::abort();
    volatile uint8_t sink = 0;
    for (size_t i = e.begin; i < e.end; ++i)
      sink = sink ^ file->bytes(e)[i - e.begin];
  }
  return 0;
}
