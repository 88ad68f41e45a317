// ir/Attrs.cpp - the sorted attribute map and its textual form.
#include "ir/Attrs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace graphc::ir {

Attrs::Attrs(std::initializer_list<std::pair<std::string, AttrValue>> init) {
  for (auto &[k, v] : init)
    set(k, v);
}

void Attrs::set(const std::string &key, AttrValue value) {
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto &item, const std::string &k) { return item.first < k; });
  if (it != items_.end() && it->first == key)
    it->second = std::move(value);
  else
    items_.insert(it, {key, std::move(value)});
}

const AttrValue *Attrs::find(const std::string &key) const {
  for (auto &item : items_)
    if (item.first == key)
      return &item.second;
  return nullptr;
}

bool Attrs::has(const std::string &key) const { return find(key) != nullptr; }

int64_t Attrs::i(const std::string &key, int64_t def) const {
  const AttrValue *v = find(key);
  if (!v)
    return def;
  if (auto *p = std::get_if<int64_t>(v))
    return *p;
  if (auto *p = std::get_if<bool>(v))
    return *p;
  // A double converts when int64_t can hold it; beyond that range, or NaN,
  // it has no integer value (converting would be undefined): the default.
  if (auto *p = std::get_if<double>(v))
    return *p >= -0x1p63 && *p < 0x1p63 ? int64_t(*p) : def;
  return def;
}

double Attrs::f(const std::string &key, double def) const {
  const AttrValue *v = find(key);
  if (!v)
    return def;
  if (auto *p = std::get_if<double>(v))
    return *p;
  if (auto *p = std::get_if<int64_t>(v))
    return double(*p);
  return def;
}

bool Attrs::b(const std::string &key, bool def) const {
  const AttrValue *v = find(key);
  if (!v)
    return def;
  if (auto *p = std::get_if<bool>(v))
    return *p;
  if (auto *p = std::get_if<int64_t>(v))
    return *p != 0;
  return def;
}

std::string Attrs::s(const std::string &key, const std::string &def) const {
  const AttrValue *v = find(key);
  auto *p = v ? std::get_if<std::string>(v) : nullptr;
  return p ? *p : def;
}

std::vector<int64_t> Attrs::ints(const std::string &key, std::vector<int64_t> def) const {
  const AttrValue *v = find(key);
  auto *p = v ? std::get_if<std::vector<int64_t>>(v) : nullptr;
  return p ? *p : def;
}

std::vector<double> Attrs::floats(const std::string &key) const {
  const AttrValue *v = find(key);
  auto *p = v ? std::get_if<std::vector<double>>(v) : nullptr;
  return p ? *p : std::vector<double>{};
}

std::string str(const AttrValue &value) {
  struct Visitor {
    std::string operator()(bool b) { return b ? "true" : "false"; }
    std::string operator()(int64_t i) { return std::to_string(i); }
    std::string operator()(double d) {
      // Shortest text that parses back to the same double, always with a '.'
      // or exponent so that it reads back as a float, not an integer.
      if (std::isinf(d))
        return d > 0 ? "inf" : "-inf";
      std::string s = fmt::format("{}", d);
      if (s.find_first_of(".eEn") == std::string::npos)
        s += ".0";
      return s;
    }
    std::string operator()(const std::string &s) {
      std::string out = "\"";
      for (char c : s) {
        if (c == '"' || c == '\\')
          out += '\\';
        out += c;
      }
      return out + "\"";
    }
    std::string operator()(const std::vector<int64_t> &v) {
      return "[" + fmt::format("{}", fmt::join(v, ",")) + "]";
    }
    std::string operator()(const std::vector<double> &v) {
      // Each with its '.' or exponent, so that the list reads back as floats.
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i)
        out += (i ? "," : "") + (*this)(v[i]);
      return out + "]";
    }
  } visitor;
  return std::visit(visitor, value);
}

std::string str(const Attrs &attrs) {
  if (attrs.empty())
    return "";
  std::string out = "{";
  bool first = true;
  for (auto &[k, v] : attrs.items()) {
    out += first ? "" : ", ";
    out += k + " = " + str(v);
    first = false;
  }
  return out + "}";
}

} // namespace graphc::ir
