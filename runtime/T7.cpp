// runtime/T7.cpp - Torch7 .t7 reader: File.lua's readObject, bounded.
#include "runtime/T7.h"

#include "runtime/Checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace graphc::runtime {

static_assert(std::endian::native == std::endian::little,
              "binary .t7 files are read as little-endian; this host would need byte swaps");

namespace {

// File.lua's type tags.
constexpr int32_t kTypeNil = t7tag::Nil;
constexpr int32_t kTypeNumber = t7tag::Number;
constexpr int32_t kTypeString = t7tag::String;
constexpr int32_t kTypeTable = t7tag::Table;
constexpr int32_t kTypeTorch = t7tag::Torch;
constexpr int32_t kTypeBoolean = t7tag::Boolean;
constexpr int32_t kTypeFunction = t7tag::Function;
constexpr int32_t kTypeLegacyRecurFunction = t7tag::LegacyRecurFunction;
constexpr int32_t kTypeRecurFunction = t7tag::RecurFunction;

constexpr size_t kMaxClassName = 256;

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f)
    return std::bit_cast<float>(sign | 0x7f800000u | man << 13); // inf, nan
  if (exp == 0) {                                                // zero, subnormal
    float f = std::ldexp(float(man), -24);
    return sign ? -f : f;
  }
  return std::bit_cast<float>(sign | (exp + 112) << 23 | man << 13);
}

/// Round to nearest even, as TH_float2half.
uint16_t floatToHalf(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = uint16_t(x >> 16 & 0x8000);
  uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) // inf or nan
    return sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0);
  if (absx < 0x38800000) { // below 2^-14: a subnormal half (or zero); exact scaling
    float scaled = std::bit_cast<float>(absx) * 16777216.0f; // 2^24
    return sign | uint16_t(std::nearbyint(scaled));
  }
  uint32_t h = ((absx >> 23) - 112) << 10 | (absx & 0x7fffff) >> 13;
  uint32_t rest = absx & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h; // a carry into the exponent is right, up to infinity (0x7c00)
  return sign | uint16_t(std::min<uint32_t>(h, 0x7c00));
}

bool isIdentifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string formatNumber(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15)
    return fmt::format("{}", int64_t(v));
  return fmt::format("{}", v);
}

} // namespace

std::string t7KeyPath(const T7Value &key) {
  switch (key.kind) {
  case T7Value::String:
    return isIdentifier(key.string) ? "." + key.string : "[" + quote(key.string) + "]";
  case T7Value::Number: return "[" + formatNumber(key.number) + "]";
  case T7Value::Boolean: return key.boolean ? "[true]" : "[false]";
  default: return "[<object>]";
  }
}

namespace {

/// The class names of tensors and storages: torch.{,Cuda}{Byte,...}{Tensor,Storage}.
struct TensorClass {
  bool known = false;
  bool tensor = false;
  bool cuda = false;
  T7Element element = T7Element::Float;
};

TensorClass tensorClass(std::string_view name) {
  TensorClass c;
  if (!name.starts_with("torch."))
    return c;
  name.remove_prefix(6);
  if (name.ends_with("Tensor")) {
    c.tensor = true;
    name.remove_suffix(6);
  } else if (name.ends_with("Storage")) {
    name.remove_suffix(7);
  } else {
    return c;
  }
  if (name.starts_with("Cuda")) {
    c.cuda = true;
    name.remove_prefix(4);
    if (name.empty()) { // torch.CudaTensor holds floats
      c.known = true;
      return c;
    }
  }
  static const std::pair<const char *, T7Element> names[] = {
      {"Byte", T7Element::Byte},     {"Char", T7Element::Char}, {"Short", T7Element::Short},
      {"Int", T7Element::Int},       {"Long", T7Element::Long}, {"Float", T7Element::Float},
      {"Double", T7Element::Double}, {"Half", T7Element::Half}};
  for (auto [n, e] : names)
    if (name == n) {
      c.known = true;
      c.element = e;
    }
  return c;
}

/// Reads one object tree, as File.lua's readObject with references on.
/// Every read checks what is left of the file first; the first failure is
/// kept in `diag_` and every caller returns false up the recursion.
class Reader {
public:
  Reader(std::span<const uint8_t> bytes, const std::string &name, T7Mode mode,
         const T7Limits &limits, T7File &out)
      : bytes_(bytes), name_(name), ascii_(mode == T7Mode::Ascii), limits_(limits), out_(out) {}

  bool readValue(T7Value &out, int depth);
  Diag diag() const { return diag_; }

private:
  uint64_t left() const { return bytes_.size() - pos_; }
  std::string path() const;
  bool fail(uint64_t at, const std::string &what);

  // The primitives, in both modes; a scalar is an array of one.
  bool readInts(int32_t *v, int64_t n);
  bool readLongs(int64_t *v, int64_t n);
  bool readDouble(double &v);
  bool readChars(int64_t n, uint8_t *dst);
  bool readElements(T7Element e, int64_t n, uint8_t *dst);
  bool readSizedString(std::string &s, const char *what);
  template <class T> bool readNumbers(T *v, int64_t n, const char *what);
  template <class T> bool readAsciiNumber(T &v, const char *what);
  template <class T, class Store>
  bool readAsciiElement(uint8_t *dst, const char *what, Store store);
  void endAsciiArray(int64_t n);

  bool readTable(T7Object &o, int depth);
  bool readTorch(T7Object &o, int depth);
  bool readStorage(T7Object &o, const TensorClass &c);
  bool readTensor(T7Object &o, const TensorClass &c, int depth);
  bool checkTensor(const T7Object &o, uint64_t at);

  std::span<const uint8_t> bytes_;
  const std::string &name_;
  bool ascii_;
  const T7Limits &limits_;
  T7File &out_;
  uint64_t pos_ = 0;
  std::vector<std::string> path_; ///< components from the root
  std::map<int32_t, T7Object *> byIndex_;
  Diag diag_;
};

/// `root.modules[3].weight`; a deep path keeps its two ends.
std::string Reader::path() const {
  constexpr size_t kHead = 6, kTail = 8;
  std::string p = "root";
  for (size_t i = 0; i < path_.size(); ++i) {
    if (path_.size() > kHead + kTail + 1 && i == kHead) {
      p += fmt::format("...({} more)...", path_.size() - kHead - kTail);
      i = path_.size() - kTail - 1;
      continue;
    }
    p += path_[i];
  }
  return p;
}

bool Reader::fail(uint64_t at, const std::string &what) {
  if (!diag_.message.empty())
    return false;
  diag_ = error(fmt::format("byte {}, {}: {}", at, path(), what));
  diag_.file = name_;
  if (ascii_) { // a text file: say line and column too
    diag_.line = 1;
    diag_.col = 1;
    for (uint64_t i = 0; i < at && i < bytes_.size(); ++i) {
      if (bytes_[i] == '\n') {
        ++diag_.line;
        diag_.col = 1;
      } else {
        ++diag_.col;
      }
    }
  }
  return false;
}

/// fscanf's whitespace skip, then one number as "%d", "%ld", "%lg" or "%g"
/// read it; out-of-range values are errors here, not wrapped.
template <class T> bool Reader::readAsciiNumber(T &v, const char *what) {
  while (pos_ < bytes_.size() && std::isspace(bytes_[pos_]))
    ++pos_;
  const char *begin = reinterpret_cast<const char *>(bytes_.data()) + pos_;
  const char *end = reinterpret_cast<const char *>(bytes_.data()) + bytes_.size();
  if (begin < end && *begin == '+')
    ++begin;
  if (begin == end)
    return fail(pos_, fmt::format("the file ends where {} should be", what));
  std::from_chars_result r;
  if constexpr (std::is_floating_point_v<T>)
    r = std::from_chars(begin, end, v, std::chars_format::general);
  else
    r = std::from_chars(begin, end, v);
  if (r.ec == std::errc::result_out_of_range)
    return fail(
        pos_,
        fmt::format("{} {} is out of range", what,
                    quote(std::string_view(begin, size_t(std::min<ptrdiff_t>(end - begin, 30))))));
  if (r.ec != std::errc())
    return fail(
        pos_,
        fmt::format("expected {}, found {}", what,
                    quote(std::string_view(begin, size_t(std::min<ptrdiff_t>(end - begin, 20))))));
  pos_ = uint64_t(r.ptr - reinterpret_cast<const char *>(bytes_.data()));
  return true;
}

/// DiskFile's auto-spacing: after an array of n > 0 elements, one newline.
void Reader::endAsciiArray(int64_t n) {
  if (n > 0 && pos_ < bytes_.size() && bytes_[pos_] == '\n')
    ++pos_;
}

/// n numbers: raw little-endian in binary, fscanf's text in ascii.
template <class T> bool Reader::readNumbers(T *v, int64_t n, const char *what) {
  if (ascii_) {
    for (int64_t i = 0; i < n; ++i)
      if (!readAsciiNumber(v[i], what))
        return false;
    endAsciiArray(n);
    return true;
  }
  if (uint64_t(n) > left() / sizeof(T))
    return fail(pos_,
                fmt::format("the file ends inside {} ({} bytes; truncated)", what, sizeof(T)));
  if (n > 0)
    std::memcpy(v, bytes_.data() + pos_, size_t(n) * sizeof(T));
  pos_ += uint64_t(n) * sizeof(T);
  return true;
}

bool Reader::readInts(int32_t *v, int64_t n) { return readNumbers(v, n, "an integer"); }
bool Reader::readLongs(int64_t *v, int64_t n) { return readNumbers(v, n, "a long integer"); }
bool Reader::readDouble(double &v) { return readNumbers(&v, 1, "a number"); }

/// Raw bytes in both modes (DiskFile reads chars with fread even in ascii).
bool Reader::readChars(int64_t n, uint8_t *dst) {
  if (n < 0 || uint64_t(n) > left())
    return fail(pos_, fmt::format("{} bytes of characters, but only {} bytes are left in the "
                                  "file",
                                  n, left()));
  if (n > 0)
    std::memcpy(dst, bytes_.data() + pos_, size_t(n));
  pos_ += uint64_t(n);
  if (ascii_)
    endAsciiArray(n);
  return true;
}

/// One ascii element parsed as T, stored as `store` makes it.
template <class T, class Store>
bool Reader::readAsciiElement(uint8_t *dst, const char *what, Store store) {
  T v{}; // from_chars leaves it untouched on an error
  if (!readAsciiNumber(v, what))
    return false;
  auto stored = store(v);
  std::memcpy(dst, &stored, sizeof stored);
  return true;
}

bool Reader::readElements(T7Element e, int64_t n, uint8_t *dst) {
  if (!ascii_) // the caller checked n against the bytes left
    return readChars(n * int64_t(t7ElementSize(e)), dst);
  if (e == T7Element::Byte || e == T7Element::Char)
    return readChars(n, dst);
  auto same = [](auto v) { return v; };
  size_t size = t7ElementSize(e);
  for (int64_t i = 0; i < n; ++i, dst += size) {
    bool ok = false;
    switch (e) {
    case T7Element::Short: ok = readAsciiElement<int16_t>(dst, "a short integer", same); break;
    case T7Element::Int: ok = readAsciiElement<int32_t>(dst, "an integer", same); break;
    case T7Element::Long: ok = readAsciiElement<int64_t>(dst, "a long integer", same); break;
    case T7Element::Float: ok = readAsciiElement<float>(dst, "a number", same); break;
    case T7Element::Double: ok = readAsciiElement<double>(dst, "a number", same); break;
    case T7Element::Half: // written as "%.9g" of the float
      ok = readAsciiElement<float>(dst, "a number", floatToHalf);
      break;
    case T7Element::Byte:
    case T7Element::Char: break;
    }
    if (!ok)
      return false;
  }
  endAsciiArray(n);
  return true;
}

/// A string as File.lua writes one: an int length, then the bytes.
bool Reader::readSizedString(std::string &s, const char *what) {
  uint64_t at = pos_;
  int32_t n;
  if (!readInts(&n, 1))
    return false;
  if (n < 0)
    return fail(at, fmt::format("{} has a negative length ({})", what, n));
  if (uint64_t(n) > left())
    return fail(
        at, fmt::format("{} of {} bytes, but only {} bytes are left in the file", what, n, left()));
  s.resize(size_t(n));
  return readChars(n, reinterpret_cast<uint8_t *>(s.data()));
}

bool Reader::readValue(T7Value &out, int depth) {
  uint64_t at = pos_;
  int32_t type;
  if (!readInts(&type, 1))
    return false;
  switch (type) {
  case kTypeNil: out.kind = T7Value::Nil; return true;
  case kTypeNumber: out.kind = T7Value::Number; return readDouble(out.number);
  case kTypeBoolean: {
    int32_t v;
    out.kind = T7Value::Boolean;
    if (!readInts(&v, 1))
      return false;
    out.boolean = v == 1; // as File.lua's readBool
    return true;
  }
  case kTypeString: out.kind = T7Value::String; return readSizedString(out.string, "a string");
  case kTypeFunction:
  case kTypeLegacyRecurFunction:
  case kTypeRecurFunction:
    return fail(at, fmt::format("a serialized Lua function (type tag {}): graphc never loads "
                                "or runs code from a .t7 file; save the model without "
                                "functions (e.g. clearState, or nil the field) and retry",
                                type));
  case kTypeTable:
  case kTypeTorch: break;
  default:
    return fail(at, fmt::format("unknown type tag {} (File.lua writes 0 to 8): not a .t7 "
                                "file, the wrong mode (binary/ascii), or corrupted",
                                type));
  }

  int32_t index;
  if (!readInts(&index, 1))
    return false;
  out.kind = T7Value::Object;
  if (auto it = byIndex_.find(index); it != byIndex_.end()) { // a reference
    out.object = it->second;
    return true;
  }
  if (depth >= limits_.maxDepth)
    return fail(at,
                fmt::format("tables and objects nested deeper than {} levels", limits_.maxDepth));
  auto object = std::make_unique<T7Object>();
  T7Object &o = *object;
  o.index = index;
  o.at = at;
  out_.objects.push_back(std::move(object));
  byIndex_[index] = &o; // before its contents, so that a cycle closes on it
  out.object = &o;
  return type == kTypeTable ? readTable(o, depth) : readTorch(o, depth);
}

bool Reader::readTable(T7Object &o, int depth) {
  o.kind = T7Object::Table;
  uint64_t at = pos_;
  int32_t count;
  if (!readInts(&count, 1))
    return false;
  // An entry is at least a key (a tag and 4 bytes, or two ascii numbers)
  // and a nil value.
  uint64_t minEntry = ascii_ ? 4 : 12;
  if (count < 0)
    return fail(at, fmt::format("a table of {} entries (negative)", count));
  if (uint64_t(count) > left() / minEntry)
    return fail(at, fmt::format("a table of {} entries, but only {} bytes are left in the file",
                                count, left()));
  std::set<std::pair<int, std::string>> seen; // (kind, key) of string and number keys
  for (int32_t i = 0; i < count; ++i) {
    uint64_t keyAt = pos_;
    T7Value key, value;
    path_.push_back(fmt::format("<key {}>", i + 1));
    if (!readValue(key, depth + 1))
      return false;
    if (key.kind == T7Value::Nil)
      return fail(keyAt, "a table key is nil (Lua tables have no nil keys)");
    if (key.kind == T7Value::Number && std::isnan(key.number))
      return fail(keyAt, "a table key is NaN (Lua tables have no NaN keys)");
    path_.pop_back();
    if (key.kind == T7Value::String || key.kind == T7Value::Number) {
      std::string k = key.kind == T7Value::String ? key.string : fmt::format("{}", key.number);
      if (!seen.insert({key.kind, k}).second)
        return fail(keyAt, fmt::format("the key {} appears twice in one table", t7KeyPath(key)));
    }
    path_.push_back(t7KeyPath(key));
    if (!readValue(value, depth + 1))
      return false;
    path_.pop_back();
    o.entries.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

bool Reader::readTorch(T7Object &o, int depth) {
  uint64_t at = pos_;
  std::string version;
  if (!readSizedString(version, "a class version"))
    return false;
  // "V 1" then the class name; before versioning, the class name alone.
  int v = 0;
  if (version.starts_with("V ")) {
    const char *b = version.data() + 2, *e = version.data() + version.size();
    auto r = std::from_chars(b, e, v);
    if (r.ec != std::errc() || r.ptr != e)
      return fail(at, fmt::format("a class version {} that is not \"V <number>\"", quote(version)));
    at = pos_;
    if (!readSizedString(o.className, "a class name"))
      return false;
  } else {
    o.className = std::move(version);
  }
  o.version = v;
  bool printable = std::all_of(o.className.begin(), o.className.end(),
                               [](char c) { return c > ' ' && c < 127; });
  if (o.className.empty() || o.className.size() > kMaxClassName || !printable)
    return fail(at, fmt::format("{} is not a class name", quote(o.className)));

  TensorClass c = tensorClass(o.className);
  if (c.known)
    return c.tensor ? readTensor(o, c, depth) : readStorage(o, c);
  if (o.className.starts_with("torch.") &&
      (o.className.ends_with("Tensor") || o.className.ends_with("Storage")))
    return fail(at, fmt::format("unknown tensor class {}", quote(o.className)));
  // Any other class (nn.Linear, cudnn.SpatialConvolution, ...) wrote its
  // fields as one value, a table unless the class has its own writer.
  o.kind = T7Object::Torch;
  return readValue(o.fields, depth + 1);
}

bool Reader::readStorage(T7Object &o, const TensorClass &c) {
  o.kind = T7Object::Storage;
  T7Storage &s = o.storage;
  s.element = c.element;
  s.cuda = c.cuda;
  uint64_t at = pos_;
  if (!readLongs(&s.size, 1))
    return false;
  size_t esize = t7ElementSize(c.element);
  if (s.size < 0)
    return fail(at, fmt::format("{} of {} elements (negative)", o.className, s.size));
  // In ascii, a number takes at least a digit and a separator.
  bool text = ascii_ && esize > 1;
  uint64_t room = !ascii_ ? left() / esize : text ? (left() + 1) / 2 : left();
  if (uint64_t(s.size) > room)
    return fail(at, fmt::format("{} of {} elements of {} bytes, but only {} bytes are left in "
                                "the file",
                                o.className, s.size, esize, left()));
  s.bytes.resize(size_t(s.size) * esize);
  return readElements(c.element, s.size, s.bytes.data());
}

bool Reader::readTensor(T7Object &o, const TensorClass &c, int depth) {
  o.kind = T7Object::Tensor;
  T7Tensor &t = o.tensor;
  t.element = c.element;
  t.cuda = c.cuda;
  uint64_t at = pos_;
  int32_t dims;
  if (!readInts(&dims, 1))
    return false;
  if (dims < 0 || dims > limits_.maxDimensions)
    return fail(at, fmt::format("a tensor of {} dimensions (0 to {} are read)", dims,
                                limits_.maxDimensions));
  t.shape.resize(size_t(dims));
  t.strides.resize(size_t(dims));
  int64_t offset;
  if (!readLongs(t.shape.data(), dims) || !readLongs(t.strides.data(), dims) ||
      !readLongs(&offset, 1))
    return false;
  if (offset < 1)
    return fail(at,
                fmt::format("a tensor with storage offset {} (1-based, so at least 1)", offset));
  t.offset = offset - 1;
  T7Value storage;
  uint64_t storageAt = pos_;
  path_.push_back("<storage>");
  bool ok = readValue(storage, depth + 1);
  path_.pop_back();
  if (!ok)
    return false;
  if (storage.kind == T7Value::Object && storage.object->kind == T7Object::Storage) {
    const T7Storage &s = storage.object->storage;
    if (s.element != t.element || s.cuda != t.cuda)
      return fail(storageAt, fmt::format("{} over a {}", o.className, storage.object->className));
    t.storage = storage.object;
  } else if (!storage.isNil()) {
    return fail(storageAt, fmt::format("the storage of a {} is not a storage", o.className));
  }
  return checkTensor(o, at);
}

/// Every element the tensor addresses lies inside its storage.
bool Reader::checkTensor(const T7Object &o, uint64_t at) {
  const T7Tensor &t = o.tensor;
  // Both stay below 2^64 (capped) and each step adds less than 2^126: no
  // overflow in 128 bits, whatever the file says.
  const __int128 cap = __int128(1) << 64;
  __int128 numel = t.shape.empty() ? 0 : 1, last = t.offset;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.strides[d] < 0)
      return fail(at, fmt::format("dimension {} of a {} has size {} and stride {} (neither may "
                                  "be negative)",
                                  d + 1, o.className, t.shape[d], t.strides[d]));
    numel = std::min<__int128>(numel * t.shape[d], cap);
    if (t.shape[d] > 0)
      last = std::min<__int128>(last + __int128(t.shape[d] - 1) * t.strides[d], cap);
  }
  if (numel == 0)
    return true;
  if (!t.storage)
    return fail(at, fmt::format("a {} of {} elements has no storage", o.className,
                                int64_t(std::min<__int128>(numel, INT64_MAX))));
  int64_t size = t.storage->storage.size;
  if (last >= size)
    return fail(at,
                fmt::format("a {} of shape ({}), strides ({}) and offset {} reaches element "
                            "{} of a storage of {} (outside it)",
                            o.className, fmt::join(t.shape, ", "), fmt::join(t.strides, ", "),
                            t.offset + 1, int64_t(std::min<__int128>(last + 1, INT64_MAX)), size));
  if (numel > size && numel > limits_.maxRepeatedElements)
    return fail(at, fmt::format("a {} of {} elements repeats the {} of its storage; graphc "
                                "reads such views up to {} elements",
                                o.className, int64_t(std::min<__int128>(numel, INT64_MAX)), size,
                                limits_.maxRepeatedElements));
  return true;
}

/// Binary files start with a 4-byte tag 0..8, ascii ones with its digits.
Expected<T7Mode> detectMode(std::span<const uint8_t> bytes, const std::string &name) {
  if (bytes.empty()) {
    Diag d = error("an empty file is not a .t7 file");
    d.file = name;
    return d;
  }
  uint8_t b = bytes[0];
  if (b <= kTypeRecurFunction)
    return T7Mode::Binary;
  if (std::isdigit(b) || std::isspace(b) || b == '-' || b == '+')
    return T7Mode::Ascii;
  Diag d = error(fmt::format("not a .t7 file: it starts with byte 0x{:02x}, neither a binary "
                             "type tag (0 to 8) nor an ascii number",
                             b));
  d.file = name;
  return d;
}

const T7Object *objectOfKind(const T7Value &v, T7Object::Kind kind) {
  return v.kind == T7Value::Object && v.object->kind == kind ? v.object : nullptr;
}

/// The value of the first entry whose key matches, in a table or in a torch
/// object's field table.
template <class Match> const T7Value *findEntry(const T7Object &o, Match match) {
  const T7Object *table = o.kind == T7Object::Torch ? o.fields.table() : &o;
  if (!table || table->kind != T7Object::Table)
    return nullptr;
  for (const auto &[k, v] : table->entries)
    if (match(k))
      return &v;
  return nullptr;
}

} // namespace

size_t t7ElementSize(T7Element e) {
  switch (e) {
  case T7Element::Byte:
  case T7Element::Char: return 1;
  case T7Element::Short:
  case T7Element::Half: return 2;
  case T7Element::Int:
  case T7Element::Float: return 4;
  case T7Element::Long:
  case T7Element::Double: return 8;
  }
  return 1;
}

const char *t7ElementName(T7Element e) {
  static const char *names[] = {"Byte", "Char", "Short", "Int", "Long", "Float", "Double", "Half"};
  return names[int(e)];
}

float t7HalfToFloat(uint16_t h) { return halfToFloat(h); }

const T7Object *T7Value::table() const { return objectOfKind(*this, T7Object::Table); }
const T7Object *T7Value::tensor() const { return objectOfKind(*this, T7Object::Tensor); }
const T7Object *T7Value::storage() const { return objectOfKind(*this, T7Object::Storage); }
const T7Object *T7Value::torchObject() const { return objectOfKind(*this, T7Object::Torch); }

bool isT7Path(std::string_view path) { return path.size() > 3 && path.ends_with(".t7"); }

double T7Storage::at(int64_t i) const {
  GRAPHC_CHECK(i >= 0 && i < size, "storage element {} of {}", i, size);
  const uint8_t *p = bytes.data() + size_t(i) * t7ElementSize(element);
  auto load = [p]<class T>(T) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return double(v);
  };
  switch (element) {
  case T7Element::Byte: return load(uint8_t());
  case T7Element::Char: return load(int8_t());
  case T7Element::Short: return load(int16_t());
  case T7Element::Int: return load(int32_t());
  case T7Element::Long: return load(int64_t());
  case T7Element::Float: return load(float());
  case T7Element::Double: return load(double());
  case T7Element::Half: {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return halfToFloat(h);
  }
  }
  return 0;
}

int64_t T7Tensor::numel() const {
  // A zero anywhere first: the other sizes alone may overflow (the reader
  // bounds only tensors that address elements).
  if (shape.empty() || std::find(shape.begin(), shape.end(), 0) != shape.end())
    return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<double> T7Tensor::values() const {
  std::vector<double> out;
  int64_t n = numel();
  if (n == 0)
    return out;
  out.reserve(size_t(n));
  const T7Storage &s = storage->storage;
  std::vector<int64_t> index(shape.size(), 0);
  int64_t at = offset;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(s.at(at));
    for (size_t d = shape.size(); d-- > 0;) { // odometer, last dimension fastest
      at += strides[d];
      if (++index[d] < shape[d])
        break;
      at -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

const T7Value *T7Object::get(std::string_view key) const {
  return findEntry(*this,
                   [&](const T7Value &k) { return k.kind == T7Value::String && k.string == key; });
}

const T7Value *T7Object::get(double key) const {
  return findEntry(*this,
                   [&](const T7Value &k) { return k.kind == T7Value::Number && k.number == key; });
}

Expected<T7File> parseT7(std::span<const uint8_t> bytes, const std::string &name, T7Mode mode,
                         const T7Limits &limits) {
  if (mode == T7Mode::Auto) {
    auto detected = detectMode(bytes, name);
    if (!detected)
      return detected.diag();
    mode = *detected;
  }
  T7File file;
  file.path = name;
  file.mode = mode;
  Reader reader(bytes, name, mode, limits, file);
  if (!reader.readValue(file.root, 0))
    return reader.diag();
  return file;
}

Expected<T7File> readT7(const std::string &path, T7Mode mode, const T7Limits &limits) {
  auto in = InputFile::open(path);
  if (!in)
    return in.diag();
  std::vector<uint8_t> bytes(size_t(in->size()));
  if (Status st = in->read(bytes.data(), bytes.size()); !st)
    return st.diag();
  return parseT7(bytes, path, mode, limits);
}

} // namespace graphc::runtime
