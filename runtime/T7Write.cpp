// runtime/T7Write.cpp - File.lua's writeObject and the Tensor and Storage
// write methods, binary mode.
#include "runtime/T7Write.h"

#include "runtime/T7.h"

#include <bit>
#include <cstring>

namespace graphc::runtime {

// The reader (runtime/T7.cpp) checks the same: binary files are
// little-endian, and this writes the host's bytes.
static_assert(std::endian::native == std::endian::little,
              "binary .t7 files are little-endian; this host would need byte swaps");

void T7Writer::raw(const void *p, size_t n) {
  const auto *b = static_cast<const uint8_t *>(p);
  out_.insert(out_.end(), b, b + n);
}
void T7Writer::int32(int32_t v) { raw(&v, sizeof v); }
void T7Writer::int64(int64_t v) { raw(&v, sizeof v); }

void T7Writer::nil() { int32(t7tag::Nil); }

void T7Writer::boolean(bool v) {
  int32(t7tag::Boolean);
  int32(v ? 1 : 0);
}

void T7Writer::number(double v) {
  int32(t7tag::Number);
  raw(&v, sizeof v);
}

void T7Writer::string(std::string_view s) {
  int32(t7tag::String);
  int32(int32_t(s.size()));
  raw(s.data(), s.size());
}

void T7Writer::table(int32_t pairs) {
  int32(t7tag::Table);
  int32(nextIndex_++);
  int32(pairs);
}

void T7Writer::torchHeader(std::string_view className) {
  int32(t7tag::Torch);
  int32(nextIndex_++);
  std::string_view version = "V 1";
  int32(int32_t(version.size()));
  raw(version.data(), version.size());
  int32(int32_t(className.size()));
  raw(className.data(), className.size());
}

void T7Writer::object(std::string_view className) { torchHeader(className); }

void T7Writer::floatTensor(const std::vector<int64_t> &shape, const float *data) {
  torchHeader("torch.FloatTensor");
  int32(int32_t(shape.size()));
  int64_t numel = 1;
  for (int64_t d : shape) {
    int64(d);
    numel *= d;
  }
  // Row-major strides, then the 1-based storage offset.
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  for (int64_t s : strides)
    int64(s);
  int64(1);
  if (shape.empty()) {
    nil(); // Torch7's empty tensor has no storage
    return;
  }
  torchHeader("torch.FloatStorage");
  int64(numel);
  raw(data, size_t(numel) * sizeof(float));
}

void T7Writer::longStorage(const std::vector<int64_t> &values) {
  torchHeader("torch.LongStorage");
  int64(int64_t(values.size()));
  for (int64_t v : values)
    int64(v);
}

} // namespace graphc::runtime
