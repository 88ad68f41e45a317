// fuzz/dataset_fuzz.cpp - the idx reader (gzip or plain) on any bytes,
// through readIdxBytes: readIdx's own code without the files. The first two
// bytes give the images file's length (little-endian, at most the rest); the
// images file is what follows, the labels file the remainder.
#include "runtime/Dataset.h"

#include <span>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t split = size_t(data[0]) | size_t(data[1]) << 8;
  data += 2;
  size -= 2;
  if (split > size)
    split = size;
  auto set = graphc::runtime::readIdxBytes(std::span(data, split),
                                           std::span(data + split, size - split), 10);
  if (set) {
    double mean = 0, std = 0;
    graphc::runtime::pixelStats(*set, &mean, &std);
  }
  return 0;
}
