// runtime/T7Write.h - Torch7's binary serialization, written: what
// torch.save(path, object) writes (File.lua's writeObject with references
// on, little-endian, 4-byte ints, 8-byte longs), for the files Torch7 loads
// back with torch.load.
//
// A stream of values in writeObject's order: a table announces its number
// of pairs and is followed by that many keys and values; an object that
// writes itself as a table (an nn module) announces its class and is
// followed by its field table. Every table and torch object gets the next
// reference index; nothing is shared.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace graphc::runtime {

class T7Writer {
public:
  void nil();
  void boolean(bool v);
  void number(double v);
  void string(std::string_view s);
  /// A table of `pairs` (key, value) pairs; the caller writes them next.
  void table(int32_t pairs);
  /// A torch object of class `className` that writes itself as a table,
  /// as nn modules do; the caller writes that table next.
  void object(std::string_view className);
  /// A contiguous torch.FloatTensor of `shape` over its own FloatStorage;
  /// an empty shape is Torch7's empty tensor (no dimensions, no storage).
  void floatTensor(const std::vector<int64_t> &shape, const float *data);
  /// A torch.LongStorage, as nn.View keeps its sizes.
  void longStorage(const std::vector<int64_t> &values);

  const std::vector<uint8_t> &bytes() const { return out_; }

private:
  void int32(int32_t v);
  void int64(int64_t v);
  void raw(const void *p, size_t n);
  /// A torch object's header: tag, new index, "V 1", class name.
  void torchHeader(std::string_view className);

  std::vector<uint8_t> out_;
  int32_t nextIndex_ = 1;
};

} // namespace graphc::runtime
