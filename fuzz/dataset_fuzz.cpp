// fuzz/dataset_fuzz.cpp - the idx reader (gzip or plain) on any bytes. The
// first two bytes give the images file's length (little-endian, at most the
// rest); the images file is what follows, the labels file the remainder.
#include "fuzz/FuzzFile.h"
#include "runtime/Dataset.h"

#include <cstdio>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t split = size_t(data[0]) | size_t(data[1]) << 8;
  data += 2;
  size -= 2;
  if (split > size)
    split = size;
  std::string images = graphc::fuzz::writeTemp("images", data, split);
  std::string labels = graphc::fuzz::writeTemp("labels", data + split, size - split);
  auto set = graphc::runtime::readIdx(images, labels, 10);
  if (set) {
    double mean = 0, std = 0;
    graphc::runtime::pixelStats(*set, &mean, &std);
  }
  std::remove(images.c_str());
  std::remove(labels.c_str());
  return 0;
}
