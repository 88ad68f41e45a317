// runtime/T7Write.cpp - File.lua's writeObject and the Tensor and Storage
// write methods, over DiskFile's binary and ascii primitives.
#include "runtime/T7Write.h"

#include <bit>
#include <cstdio>
#include <cstring>

namespace graphc::runtime {

// The reader (runtime/T7.cpp) checks the same: binary files are
// little-endian, and this writes the host's bytes.
static_assert(std::endian::native == std::endian::little,
              "binary .t7 files are little-endian; this host would need byte swaps");

std::string t7ClassName(T7Element element, bool cuda, bool tensor) {
  std::string name = cuda ? "torch.Cuda" : "torch.";
  if (!(cuda && element == T7Element::Float)) // torch.CudaTensor holds floats
    name += t7ElementName(element);
  return name + (tensor ? "Tensor" : "Storage");
}

T7Writer::T7Writer(T7Mode mode) : ascii_(mode == T7Mode::Ascii) {
  GRAPHC_CHECK(mode != T7Mode::Auto, "a .t7 file is written in binary or ascii mode");
}

void T7Writer::raw(const void *p, size_t n) {
  const auto *b = static_cast<const uint8_t *>(p);
  out_.insert(out_.end(), b, b + n);
}

namespace {

/// DiskFile's ascii array: each item printed by `print`, spaces between,
/// a newline after a non-empty array.
template <class T, class Print>
void asciiArray(std::vector<uint8_t> &out, std::span<const T> v, Print print) {
  char buf[40];
  for (size_t i = 0; i < v.size(); ++i) {
    int n = print(buf, sizeof buf, v[i]);
    out.insert(out.end(), buf, buf + n);
    if (i + 1 < v.size())
      out.push_back(' ');
  }
  if (!v.empty())
    out.push_back('\n');
}

int printInteger(char *buf, size_t n, int64_t v) {
  return std::snprintf(buf, n, "%lld", static_cast<long long>(v));
}
int printFloat(char *buf, size_t n, float v) { return std::snprintf(buf, n, "%.9g", double(v)); }
int printDouble(char *buf, size_t n, double v) { return std::snprintf(buf, n, "%.17g", v); }

/// `bytes` as little-endian Ts.
template <class T> std::vector<T> elementsOf(std::span<const uint8_t> bytes) {
  std::vector<T> v(bytes.size() / sizeof(T));
  if (!v.empty())
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

} // namespace

void T7Writer::ints(std::span<const int32_t> v) {
  if (ascii_)
    return asciiArray(out_, v, printInteger);
  raw(v.data(), v.size_bytes());
}

void T7Writer::longs(std::span<const int64_t> v) {
  if (ascii_)
    return asciiArray(out_, v, printInteger);
  raw(v.data(), v.size_bytes());
}

void T7Writer::double64(double v) {
  if (ascii_)
    return asciiArray(out_, std::span<const double>(&v, 1), printDouble);
  raw(&v, sizeof v);
}

void T7Writer::chars(std::string_view s) {
  text(s);
  if (ascii_ && !s.empty())
    out_.push_back('\n');
}

void T7Writer::sizedString(std::string_view s) {
  int32(int32_t(s.size()));
  chars(s);
}

void T7Writer::nil() { int32(t7tag::Nil); }

void T7Writer::boolean(bool v) {
  int32(t7tag::Boolean);
  int32(v ? 1 : 0);
}

void T7Writer::number(double v) {
  int32(t7tag::Number);
  double64(v);
}

void T7Writer::string(std::string_view s) {
  int32(t7tag::String);
  sizedString(s);
}

T7Writer::Ref T7Writer::table(int32_t pairs) {
  Ref r{t7tag::Table, nextIndex_++};
  int32(r.tag);
  int32(r.index);
  int32(pairs);
  return r;
}

void T7Writer::reference(Ref r) {
  GRAPHC_CHECK((r.tag == t7tag::Table || r.tag == t7tag::Torch) && r.index > 0 &&
                   r.index < nextIndex_,
               "a reference to object {} (tag {}) that was not written", r.index, r.tag);
  int32(r.tag);
  int32(r.index);
}

T7Writer::Ref T7Writer::torchHeader(std::string_view className, int version) {
  Ref r{t7tag::Torch, nextIndex_++};
  int32(r.tag);
  int32(r.index);
  if (version != 0)
    sizedString("V " + std::to_string(version));
  sizedString(className);
  return r;
}

T7Writer::Ref T7Writer::object(std::string_view className, int version) {
  return torchHeader(className, version);
}

T7Writer::Ref T7Writer::storage(T7Element element, std::span<const uint8_t> bytes, bool cuda) {
  size_t esize = t7ElementSize(element);
  GRAPHC_CHECK(bytes.size() % esize == 0, "{} bytes of {} elements", bytes.size(),
               t7ElementName(element));
  Ref r = torchHeader(t7ClassName(element, cuda, false), 1);
  int64(int64_t(bytes.size() / esize));
  if (!ascii_) {
    raw(bytes.data(), bytes.size());
    return r;
  }
  switch (element) {
  case T7Element::Byte:
  case T7Element::Char: chars({reinterpret_cast<const char *>(bytes.data()), bytes.size()}); break;
  case T7Element::Short: {
    auto v = elementsOf<int16_t>(bytes);
    asciiArray(out_, std::span<const int16_t>(v), printInteger);
    break;
  }
  case T7Element::Int: ints(elementsOf<int32_t>(bytes)); break;
  case T7Element::Long: longs(elementsOf<int64_t>(bytes)); break;
  case T7Element::Float: {
    auto v = elementsOf<float>(bytes);
    asciiArray(out_, std::span<const float>(v), printFloat);
    break;
  }
  case T7Element::Double: {
    auto v = elementsOf<double>(bytes);
    asciiArray(out_, std::span<const double>(v), printDouble);
    break;
  }
  case T7Element::Half: { // "%.9g" of the float it stands for
    auto v = elementsOf<uint16_t>(bytes);
    asciiArray(out_, std::span<const uint16_t>(v), [](char *buf, size_t n, uint16_t h) {
      return printFloat(buf, n, t7HalfToFloat(h));
    });
    break;
  }
  }
  return r;
}

T7Writer::Ref T7Writer::tensor(T7Element element, const std::vector<int64_t> &shape,
                               const std::vector<int64_t> &strides, int64_t offset, bool cuda) {
  GRAPHC_CHECK(shape.size() == strides.size(), "{} sizes and {} strides", shape.size(),
               strides.size());
  Ref r = torchHeader(t7ClassName(element, cuda, true), 1);
  int32(int32_t(shape.size()));
  longs(shape);
  longs(strides);
  int64(offset + 1);
  return r;
}

void T7Writer::floatTensor(const std::vector<int64_t> &shape, const float *data) {
  // Row-major strides.
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  tensor(T7Element::Float, shape, strides);
  if (shape.empty()) {
    nil(); // Torch7's empty tensor has no storage
    return;
  }
  int64_t numel = 1;
  for (int64_t d : shape)
    numel *= d;
  storage(T7Element::Float, {reinterpret_cast<const uint8_t *>(data), size_t(numel) * 4});
}

void T7Writer::longStorage(const std::vector<int64_t> &values) {
  storage(T7Element::Long,
          {reinterpret_cast<const uint8_t *>(values.data()), values.size() * sizeof(int64_t)});
}

} // namespace graphc::runtime
