// ir/Attrs.h - the small attribute map carried by every node.
//
// Attributes are few per node (an axis list, a stride, a name), so they live
// in a vector kept sorted by key: printing is deterministic and lookups are a
// short scan.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace graphc::ir {

using AttrValue =
    std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

class Attrs {
public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<std::string, AttrValue>> init);

  void set(const std::string &key, AttrValue value);
  bool has(const std::string &key) const;
  const AttrValue *find(const std::string &key) const;

  /// Typed getters; the default is returned when the key is absent. i()
  /// takes a double too, truncated; one out of int64_t's range (or NaN)
  /// gives the default.
  int64_t i(const std::string &key, int64_t def = 0) const;
  double f(const std::string &key, double def = 0) const;
  bool b(const std::string &key, bool def = false) const;
  std::string s(const std::string &key, const std::string &def = "") const;
  std::vector<int64_t> ints(const std::string &key, std::vector<int64_t> def = {}) const;
  /// A list of floats (`[0.5,1.0]`: a constant tensor's values).
  std::vector<double> floats(const std::string &key) const;

  const std::vector<std::pair<std::string, AttrValue>> &items() const { return items_; }
  bool empty() const { return items_.empty(); }
  bool operator==(const Attrs &) const = default;

private:
  std::vector<std::pair<std::string, AttrValue>> items_;
};

/// `{offset = 0, name = "1.weight"}` style; empty string when no attributes.
std::string str(const Attrs &attrs);
/// One attribute value in the textual IR's syntax.
std::string str(const AttrValue &value);

} // namespace graphc::ir
