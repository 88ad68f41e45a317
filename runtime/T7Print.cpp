// runtime/T7Print.cpp - the indented text form of a .t7 tree.
#include "runtime/T7Print.h"

#include <fmt/format.h>

#include <map>

namespace graphc::runtime {

namespace {

std::string dims(const std::vector<int64_t> &v) { return fmt::format("{}", fmt::join(v, "x")); }

bool contiguous(const T7Tensor &t) {
  int64_t expected = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.strides[d] != expected)
      return false;
    expected *= t.shape[d];
  }
  return true;
}

/// An element as its type prints it: a float's shortest form is a float's
/// (0.001, not 0.0010000000474974513).
std::string element(double v, T7Element e) {
  return e == T7Element::Float || e == T7Element::Half ? fmt::format("{}", float(v))
                                                       : fmt::format("{}", v);
}

/// " = [a, b, ...]": `shown` elements of `total`.
std::string valueList(const std::vector<std::string> &shown, int64_t total) {
  if (shown.empty())
    return "";
  return fmt::format(" = [{}{}]", fmt::join(shown, ", "),
                     total > int64_t(shown.size()) ? ", ..." : "");
}

/// The first `n` elements in row-major order.
std::string firstValues(const T7Tensor &t, int n) {
  std::vector<std::string> shown;
  for (int64_t i = 0; i < std::min<int64_t>(t.numel(), n); ++i) {
    int64_t rest = i, at = t.offset;
    for (size_t d = t.shape.size(); d-- > 0;) {
      at += rest % t.shape[d] * t.strides[d];
      rest /= t.shape[d];
    }
    shown.push_back(element(t.storage->storage.at(at), t.element));
  }
  return valueList(shown, t.numel());
}

std::string firstValues(const T7Storage &s, int n) {
  std::vector<std::string> shown;
  for (int64_t i = 0; i < std::min<int64_t>(s.size, n); ++i)
    shown.push_back(element(s.at(i), s.element));
  return valueList(shown, s.size);
}

class Printer {
public:
  explicit Printer(const T7PrintOptions &options) : options_(options) {}

  void value(const std::string &label, const std::string &path, const T7Value &v, int indent);
  std::string out;

private:
  void entries(const T7Object &table, const std::string &path, int indent);
  std::string describe(const T7Object &o) const;

  const T7PrintOptions &options_;
  std::map<const T7Object *, std::string> shown_; ///< object -> the path it was printed at
};

std::string Printer::describe(const T7Object &o) const {
  switch (o.kind) {
  case T7Object::Table:
    return o.entries.empty()       ? "table, empty"
           : o.entries.size() == 1 ? "table, 1 entry"
                                   : fmt::format("table, {} entries", o.entries.size());
  case T7Object::Storage:
    return fmt::format("{}, {} elements{}", o.className, o.storage.size,
                       firstValues(o.storage, options_.values));
  case T7Object::Tensor: {
    const T7Tensor &t = o.tensor;
    if (t.numel() == 0)
      return o.className + (t.shape.empty() ? ", empty" : " " + dims(t.shape));
    std::string view;
    if (!contiguous(t))
      view += " strides " + dims(t.strides);
    if (t.offset != 0)
      view += fmt::format(" offset {}", t.offset + 1);
    return fmt::format("{} {}{}{}", o.className, dims(t.shape), view,
                       firstValues(t, options_.values));
  }
  case T7Object::Torch: return o.version == 0 ? o.className + " (unversioned)" : o.className;
  }
  return "";
}

void Printer::value(const std::string &label, const std::string &path, const T7Value &v,
                    int indent) {
  out += std::string(size_t(indent), ' ') + label + ": ";
  switch (v.kind) {
  case T7Value::Nil: out += "nil\n"; return;
  case T7Value::Boolean: out += v.boolean ? "true\n" : "false\n"; return;
  case T7Value::Number: out += fmt::format("{}\n", v.number); return;
  case T7Value::String: out += quote(v.string, 60) + "\n"; return;
  case T7Value::Object: break;
  }
  const T7Object &o = *v.object;
  if (auto it = shown_.find(&o); it != shown_.end()) {
    out += fmt::format("{} (the same object as {})\n", describe(o), it->second);
    return;
  }
  shown_[&o] = path;
  out += describe(o) + "\n";
  if (o.kind == T7Object::Table)
    entries(o, path, indent + 2);
  if (o.kind != T7Object::Torch)
    return;
  // A module's field table is part of the module: its entries go right below.
  if (const T7Object *fields = o.fields.table(); fields && !shown_.count(fields)) {
    shown_[fields] = path;
    entries(*fields, path, indent + 2);
  } else {
    value("fields", path, o.fields, indent + 2);
  }
}

void Printer::entries(const T7Object &table, const std::string &path, int indent) {
  for (const auto &[key, v] : table.entries) {
    std::string component = t7KeyPath(key);
    value(component, path + component, v, indent);
  }
}

} // namespace

std::string printT7(const T7File &file, const T7PrintOptions &options) {
  Printer p(options);
  p.value("root", "root", file.root, 0);
  return p.out;
}

} // namespace graphc::runtime
