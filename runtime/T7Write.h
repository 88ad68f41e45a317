// runtime/T7Write.h - Torch7's serialization, written: what torch.save(path,
// object[, 'ascii']) writes (File.lua's writeObject with references on), for
// the files Torch7 loads back with torch.load.
//
// A stream of values in writeObject's order: a table announces its number
// of pairs and is followed by that many keys and values; an object that
// writes itself as a table (an nn module) announces its class and is
// followed by its field table; a tensor announces its sizes, strides and
// offset and is followed by its storage. Every table and torch object gets
// the next reference index, and File.lua writes an object it has already
// written (the same Lua table, tensor or storage met again, a cycle
// included) as its tag and that index alone: `reference` does the same.
//
// Binary mode is DiskFile's native layout on a little-endian 64-bit host:
// 4-byte ints, 8-byte longs, raw elements. Ascii mode prints ints and longs
// as "%d", floats as "%.9g", doubles as "%.17g", the items of one array
// separated by spaces and ended by a newline; characters (strings, byte and
// char storages) go raw, then a newline.
#pragma once

#include "runtime/T7.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace graphc::runtime {

/// "torch.FloatTensor", "torch.CudaLongStorage", ...; Torch7's float CUDA
/// classes are torch.CudaTensor and torch.CudaStorage.
std::string t7ClassName(T7Element element, bool cuda, bool tensor);

class T7Writer {
public:
  /// Binary or Ascii (not Auto).
  explicit T7Writer(T7Mode mode = T7Mode::Binary);

  /// A table or torch object already started, to be written again.
  struct Ref {
    int32_t tag = 0;
    int32_t index = 0;
  };

  void nil();
  void boolean(bool v);
  void number(double v);
  void string(std::string_view s);
  /// A table of `pairs` (key, value) pairs; the caller writes them next.
  Ref table(int32_t pairs);
  /// A torch object of class `className` that writes itself as a table,
  /// as nn modules do; the caller writes that table next. Version 0 writes
  /// no "V n" (files from before class versions).
  Ref object(std::string_view className, int version = 1);
  /// What File.lua writes for an object it has already written: its tag
  /// and reference index.
  void reference(Ref r);
  /// A storage of `element`s, given as their little-endian bytes
  /// (T7Storage::bytes: a multiple of t7ElementSize(element)).
  Ref storage(T7Element element, std::span<const uint8_t> bytes, bool cuda = false);
  /// A tensor's header: sizes, strides and a 0-based storage offset (the
  /// file holds it 1-based). The caller writes its storage next: storage(),
  /// a reference to one, or nil() for a tensor without one.
  Ref tensor(T7Element element, const std::vector<int64_t> &shape,
             const std::vector<int64_t> &strides, int64_t offset = 0, bool cuda = false);
  /// A contiguous torch.FloatTensor of `shape` over its own FloatStorage;
  /// an empty shape is Torch7's empty tensor (no dimensions, no storage).
  void floatTensor(const std::vector<int64_t> &shape, const float *data);
  /// A torch.LongStorage, as nn.View keeps its sizes.
  void longStorage(const std::vector<int64_t> &values);

  const std::vector<uint8_t> &bytes() const { return out_; }

private:
  void ints(std::span<const int32_t> v);
  void longs(std::span<const int64_t> v);
  void int32(int32_t v) { ints({&v, 1}); }
  void int64(int64_t v) { longs({&v, 1}); }
  void double64(double v);
  /// Characters: raw in both modes, then a newline in ascii.
  void chars(std::string_view s);
  void sizedString(std::string_view s);
  void raw(const void *p, size_t n);
  void text(std::string_view s) { raw(s.data(), s.size()); }
  /// A torch object's header: tag, new index, "V n" (unless 0), class name.
  Ref torchHeader(std::string_view className, int version);

  bool ascii_;
  std::vector<uint8_t> out_;
  int32_t nextIndex_ = 1;
};

} // namespace graphc::runtime
