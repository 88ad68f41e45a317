// fuzz/t7_fuzz.cpp - the Torch7 .t7 reader on any bytes, in both modes. What
// it accepts must keep every storage whole and every tensor inside its
// storage (T7Storage::at checks each element it is asked for), and must
// print (`graphc inspect`) without running forever on shared objects.
#include "fuzz/FuzzFile.h"
#include "runtime/T7.h"
#include "runtime/T7Print.h"

#include <cstdio>
#include <cstdlib>

namespace {

void walk(const graphc::runtime::T7File &file) {
  using graphc::runtime::T7Object;
  volatile double sink = 0;
  for (const auto &o : file.objects) {
    if (o->kind == T7Object::Storage) {
      const auto &s = o->storage;
      if (s.bytes.size() != size_t(s.size) * graphc::runtime::t7ElementSize(s.element))
        std::abort();
      for (int64_t i = 0; i < s.size; ++i)
        sink = sink + s.at(i);
    } else if (o->kind == T7Object::Tensor && o->tensor.numel() <= (int64_t(1) << 20)) {
      for (double v : o->tensor.values())
        sink = sink + v;
    }
  }
  sink = sink + double(graphc::runtime::printT7(file).size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = graphc::fuzz::writeTemp("model.t7", data, size);
  auto file = graphc::runtime::readT7(path);
  std::remove(path.c_str());
  if (file)
    walk(*file);
  // The other mode on the same bytes: a binary file read as ascii and back.
  std::span<const uint8_t> bytes(data, size);
  for (auto mode : {graphc::runtime::T7Mode::Binary, graphc::runtime::T7Mode::Ascii})
    if (auto f = graphc::runtime::parseT7(bytes, "fuzz.t7", mode))
      walk(*f);
  return 0;
}
