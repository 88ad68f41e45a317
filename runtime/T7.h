// runtime/T7.h - a safe reader for Torch7's .t7 files (torch.save, File.lua).
//
// Torch7 users keep data sets and trained networks as .t7 files written by
// File.lua's writeObject, in binary (little-endian, 4-byte ints, 8-byte
// longs) or ascii mode. The reader turns one into a tree of values: nil,
// booleans, numbers, strings, tables, tensors, storages and torch objects
// ({className, fields}, e.g. an nn.Linear), without knowing any nn class.
// It never executes anything: a serialized Lua function is refused. Every
// count is checked against the bytes left in the file before anything is
// allocated, nesting is bounded, and errors say where (byte offset and the
// path of keys from the root, `root.modules[3].weight`) and what.
//
// Tables and torch objects carry Torch7's reference indices: a second
// occurrence of an index is the object already read, so shared references
// share and cycles close. The objects therefore live in an arena owned by
// T7File (reference-counted pointers would leak a cycle), and values point
// into it.
#pragma once

#include "ir/Error.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace graphc::runtime {

enum class T7Mode { Auto, Binary, Ascii };

/// File.lua's type tags, for the reader and the writer.
namespace t7tag {
inline constexpr int32_t Nil = 0, Number = 1, String = 2, Table = 3, Torch = 4, Boolean = 5,
                         Function = 6, LegacyRecurFunction = 7, RecurFunction = 8;
}

/// Element types of Torch7 storages; Cuda* storages are read as host data.
enum class T7Element { Byte, Char, Short, Int, Long, Float, Double, Half };

/// Bytes per element as stored (Long 8, Half 2).
size_t t7ElementSize(T7Element e);
/// "Byte", "Float", ...
const char *t7ElementName(T7Element e);
/// An IEEE half's value (HalfStorage elements are kept as their bits).
float t7HalfToFloat(uint16_t h);

struct T7Object;

/// One value of the tree. Tables, tensors, storages and torch objects are
/// `Object`s owned by the T7File; equal pointers are the same Lua object.
struct T7Value {
  enum Kind { Nil, Boolean, Number, String, Object } kind = Nil;
  bool boolean = false;
  double number = 0;
  std::string string;
  const T7Object *object = nullptr;

  bool isNil() const { return kind == Nil; }
  /// The object if it is a table, else nullptr (likewise below).
  const T7Object *table() const;
  const T7Object *tensor() const;
  const T7Object *storage() const;
  const T7Object *torchObject() const;
};

/// A storage's elements as little-endian bytes of `element`
/// (`size * t7ElementSize(element)` of them).
struct T7Storage {
  T7Element element = T7Element::Float;
  bool cuda = false;
  int64_t size = 0;
  std::vector<uint8_t> bytes;

  /// Element `i` (0-based, below size) converted to double.
  double at(int64_t i) const;
};

/// A tensor: a strided view into a storage, checked to lie inside it.
struct T7Tensor {
  T7Element element = T7Element::Float;
  bool cuda = false;
  std::vector<int64_t> shape;        ///< empty for Torch7's empty tensor
  std::vector<int64_t> strides;      ///< in elements, never negative
  int64_t offset = 0;                ///< 0-based (the file stores it 1-based)
  const T7Object *storage = nullptr; ///< nullptr only when numel() == 0

  int64_t numel() const;
  /// The elements in row-major order, converted to double.
  std::vector<double> values() const;
};

/// A table, a tensor, a storage or any other torch object.
struct T7Object {
  enum Kind { Table, Tensor, Storage, Torch } kind = Table;
  int32_t index = 0;     ///< Torch7's reference index in the file
  uint64_t at = 0;       ///< byte offset of its type tag
  std::string className; ///< "torch.FloatTensor", "nn.Linear"; empty for a table
  int version = 0;       ///< the "V n" before the class name; 0 when absent

  std::vector<std::pair<T7Value, T7Value>> entries; ///< Table: in file order
  T7Tensor tensor;                                  ///< Tensor
  T7Storage storage;                                ///< Storage
  T7Value fields; ///< Torch: what the object wrote, usually a table

  /// Table (or a Torch object's field table): the value at a string or
  /// number key, or nullptr.
  const T7Value *get(std::string_view key) const;
  const T7Value *get(double key) const;
};

/// A .t7 file read whole.
struct T7File {
  std::string path;
  T7Mode mode = T7Mode::Binary; ///< as read (never Auto)
  T7Value root;
  std::vector<std::unique_ptr<T7Object>> objects; ///< the arena, in file order
};

/// The reader's bounds.
struct T7Limits {
  int maxDepth = 200;     ///< nested tables and objects (an nn model nests about 3 per container;
                          ///< the recursive reader must fit the stack under ASan, too)
  int maxDimensions = 64; ///< of a tensor
  /// A tensor may address more elements than its storage holds only by
  /// repeating them (a zero stride); it may not address more than this.
  int64_t maxRepeatedElements = int64_t(1) << 26;
};

/// Whether `path` names a .t7 file (by its extension).
bool isT7Path(std::string_view path);

/// How a table key extends a path: `.name`, `[3]`, `['odd key']`.
std::string t7KeyPath(const T7Value &key);

/// Reads a .t7 file. Auto tells the modes apart by the first byte (a binary
/// file starts with a 4-byte type tag 0..8, an ascii one with a digit).
Expected<T7File> readT7(const std::string &path, T7Mode mode = T7Mode::Auto,
                        const T7Limits &limits = {});

/// The same on bytes in memory; `name` is the file name errors carry.
Expected<T7File> parseT7(std::span<const uint8_t> bytes, const std::string &name,
                         T7Mode mode = T7Mode::Auto, const T7Limits &limits = {});

} // namespace graphc::runtime
