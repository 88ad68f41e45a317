// ir/Parser.cpp - a hand-written recursive-descent parser for the textual IR.
#include "ir/Parser.h"

#include "ir/ShapeInference.h"

#include <fmt/format.h>

#include <charconv>
#include <map>

namespace graphc::ir {
namespace {

class IRParser {
public:
  IRParser(std::string_view text, const std::string &file) : text_(text), file_(file) {}

  Expected<Graph> run() {
    skipSpace();
    if (!expectWord("graph") || !expect('@'))
      return *err_;
    std::string name = ident();
    if (name.empty())
      return fail("expected a graph name after '@'");
    Graph g(name);
    if (!expect('{'))
      return *err_;
    int group = -1;
    while (true) {
      skipSpace();
      if (atEnd())
        return fail("unexpected end of input, expected 'return' or '}'");
      if (peek() == '}' && group >= 0) {
        ++pos_;
        group = -1;
        continue;
      }
      size_t save = pos_;
      std::string word = ident();
      if (word == "return") {
        if (group >= 0)
          return failAt(save, fmt::format("expected '}}' closing kernel @k{} "
                                          "before 'return'",
                                          group));
        if (!parseReturn(g))
          return *err_;
        break;
      }
      if (word == "kernel") {
        if (group >= 0)
          return fail("kernel groups do not nest");
        group = parseKernelHeader(g);
        if (group < 0)
          return *err_;
        continue;
      }
      pos_ = save;
      if (!parseNode(g, group))
        return *err_;
    }
    if (!expect('}'))
      return *err_;
    skipSpace();
    if (!atEnd())
      return fail("unexpected text after the graph");
    // Group @kI is group I, as the printer numbers them; indices no node uses
    // get an empty placeholder.
    int numGroups = groups_.empty() ? 0 : groups_.rbegin()->first + 1;
    for (int i = 0; i < numGroups; ++i) {
      auto it = groups_.find(i);
      g.addGroup(it != groups_.end() ? it->second : KernelGroup{});
    }
    return g;
  }

private:
  // --- characters -------------------------------------------------------
  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  void skipSpace() {
    while (!atEnd()) {
      char c = peek();
      if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (!atEnd() && peek() != '\n')
          ++pos_;
      } else if (std::isspace((unsigned char)c)) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::pair<int, int> location(size_t at) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return {line, col};
  }

  Diag fail(const std::string &msg) { return failAt(pos_, msg); }
  Diag failAt(size_t at, const std::string &msg) {
    Diag d;
    d.file = file_;
    std::tie(d.line, d.col) = location(at);
    d.message = msg;
    if (!err_)
      err_ = d;
    return *err_;
  }

  bool expect(char c) {
    skipSpace();
    if (peek() != c) {
      fail(fmt::format("expected '{}', found {}", c,
                       atEnd() ? "end of input" : quote(text_.substr(pos_, 1))));
      return false;
    }
    ++pos_;
    return true;
  }

  bool expectWord(const char *w) {
    skipSpace();
    size_t save = pos_;
    if (ident() != w) {
      pos_ = save;
      fail(fmt::format("expected '{}'", w));
      return false;
    }
    return true;
  }

  std::string ident() {
    skipSpace();
    size_t start = pos_;
    while (!atEnd() && (std::isalnum((unsigned char)peek()) || peek() == '_' || peek() == '.'))
      ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  // --- pieces -----------------------------------------------------------
  std::optional<std::string> stringLit() {
    if (!expect('"'))
      return std::nullopt;
    std::string s;
    while (!atEnd() && peek() != '"') {
      if (peek() == '\\')
        ++pos_;
      if (atEnd())
        break;
      s += text_[pos_++];
    }
    if (!expect('"'))
      return std::nullopt;
    return s;
  }

  std::optional<int64_t> integer() {
    skipSpace();
    size_t start = pos_;
    if (peek() == '-')
      ++pos_;
    while (std::isdigit((unsigned char)peek()))
      ++pos_;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, v);
    if (ec != std::errc() || p != text_.data() + pos_) {
      failAt(start, "expected an integer");
      return std::nullopt;
    }
    return v;
  }

  std::optional<AttrValue> attrValue() {
    skipSpace();
    char c = peek();
    if (c == '"') {
      auto s = stringLit();
      if (!s)
        return std::nullopt;
      return AttrValue(*s);
    }
    if (c == '[') {
      // Integers, or floats when any element is written as one.
      ++pos_;
      std::vector<AttrValue> items;
      bool floats = false;
      skipSpace();
      while (peek() != ']') {
        size_t start = pos_;
        auto x = word();
        if (!x)
          return std::nullopt;
        if (!std::holds_alternative<int64_t>(*x) && !std::holds_alternative<double>(*x)) {
          failAt(start, "expected a number in a list");
          return std::nullopt;
        }
        floats |= std::holds_alternative<double>(*x);
        items.push_back(*x);
        skipSpace();
        if (peek() == ',')
          ++pos_;
        else if (peek() != ']') {
          fail("expected ',' or ']' in a list");
          return std::nullopt;
        }
        skipSpace();
      }
      ++pos_;
      if (!floats) {
        std::vector<int64_t> v;
        for (const AttrValue &x : items)
          v.push_back(std::get<int64_t>(x));
        return AttrValue(v);
      }
      std::vector<double> v;
      for (const AttrValue &x : items)
        v.push_back(std::holds_alternative<double>(x) ? std::get<double>(x)
                                                      : double(std::get<int64_t>(x)));
      return AttrValue(v);
    }
    return word();
  }

  /// A bare attribute value: true/false, an integer or a float.
  std::optional<AttrValue> word() {
    skipSpace();
    size_t start = pos_;
    while (!atEnd() &&
           (std::isalnum((unsigned char)peek()) || peek() == '-' || peek() == '+' || peek() == '.'))
      ++pos_;
    std::string word(text_.substr(start, pos_ - start));
    if (word == "true" || word == "false")
      return AttrValue(word == "true");
    if (word == "inf" || word == "-inf")
      return AttrValue(word == "inf" ? HUGE_VAL : -HUGE_VAL);
    bool isFloat = word.find_first_of(".eEn") != std::string::npos;
    if (isFloat) {
      double d = 0;
      auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), d);
      if (ec == std::errc() && p == word.data() + word.size())
        return AttrValue(d);
    } else {
      int64_t i = 0;
      auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), i);
      if (ec == std::errc() && p == word.data() + word.size() && !word.empty())
        return AttrValue(i);
    }
    failAt(start, fmt::format("bad attribute value {}", quote(word)));
    return std::nullopt;
  }

  std::optional<Attrs> attrs() {
    Attrs a;
    skipSpace();
    if (peek() != '{')
      return a;
    ++pos_;
    skipSpace();
    while (peek() != '}') {
      std::string key = ident();
      if (key.empty()) {
        fail("expected an attribute name");
        return std::nullopt;
      }
      if (!expect('='))
        return std::nullopt;
      auto v = attrValue();
      if (!v)
        return std::nullopt;
      a.set(key, *v);
      skipSpace();
      if (peek() == ',')
        ++pos_;
      else if (peek() != '}') {
        fail("expected ',' or '}' after an attribute");
        return std::nullopt;
      }
      skipSpace();
    }
    ++pos_;
    return a;
  }

  std::optional<Type> type() {
    skipSpace();
    size_t start = pos_;
    std::string dt = ident();
    Type t;
    if (dt == "f32")
      t.dtype = DType::F32;
    else if (dt == "i32")
      t.dtype = DType::I32;
    else {
      failAt(start, fmt::format("unknown dtype {}", quote(dt)));
      return std::nullopt;
    }
    if (!expect('['))
      return std::nullopt;
    skipSpace();
    while (peek() != ']') {
      skipSpace();
      if (peek() == 'N') {
        ++pos_;
        t.shape.push_back(kBatch);
      } else {
        auto i = integer();
        if (!i)
          return std::nullopt;
        if (*i < 0) {
          fail("dimensions are not negative");
          return std::nullopt;
        }
        t.shape.push_back(*i);
      }
      skipSpace();
      if (peek() == ',')
        ++pos_;
      else if (peek() != ']') {
        fail("expected ',' or ']' in a shape");
        return std::nullopt;
      }
      skipSpace();
    }
    ++pos_;
    if (!withinMaxElements(t.shape)) {
      fail(fmt::format("the type {} has more than 2^40 elements", str(t)));
      return std::nullopt;
    }
    return t;
  }

  std::optional<ValueId> valueRef(const Graph &g) {
    skipSpace();
    size_t start = pos_;
    if (!expect('%'))
      return std::nullopt;
    std::string name = ident();
    auto it = names_.find(name);
    if (it == names_.end()) {
      failAt(start, fmt::format("use of undefined value %{}", name));
      return std::nullopt;
    }
    (void)g;
    return it->second;
  }

  // --- statements -------------------------------------------------------
  int parseKernelHeader(Graph &g) {
    (void)g;
    if (!expect('@'))
      return -1;
    size_t labelAt = pos_;
    std::string label = ident();
    int id = -1;
    if (label.size() > 1 && label[0] == 'k') {
      auto [p, ec] = std::from_chars(label.data() + 1, label.data() + label.size(), id);
      if (ec != std::errc() || p != label.data() + label.size())
        id = -1;
    }
    if (id < 0 || id >= kMaxGroups) {
      failAt(labelAt, fmt::format("expected a kernel label @k<index>, found {}", quote(label)));
      return -1;
    }
    KernelGroup k;
    k.kind = ident();
    if (k.kind.empty()) {
      fail("expected the kernel kind");
      return -1;
    }
    auto reason = stringLit();
    if (!reason || !expect('{'))
      return -1;
    k.reason = *reason;
    groups_.try_emplace(id, std::move(k));
    return id;
  }

  bool parseNode(Graph &g, int group) {
    skipSpace();
    size_t start = pos_;
    if (!expect('%'))
      return false;
    std::string name = ident();
    if (name.empty() || names_.count(name)) {
      failAt(start, name.empty() ? "expected a value name"
                                 : fmt::format("value %{} is defined twice", name));
      return false;
    }
    if (!expect('='))
      return false;
    skipSpace();
    size_t opAt = pos_;
    std::string opname = ident();
    auto op = opFromName(opname);
    if (!op) {
      failAt(opAt, fmt::format("unknown op {}", quote(opname)));
      return false;
    }
    std::vector<ValueId> operands;
    skipSpace();
    while (peek() == '%') {
      auto v = valueRef(g);
      if (!v)
        return false;
      operands.push_back(*v);
      skipSpace();
      if (peek() != ',')
        break;
      ++pos_;
      skipSpace();
    }
    auto a = attrs();
    if (!a || !expect(':'))
      return false;
    auto t = type();
    if (!t)
      return false;
    if (opArity(*op) >= 0 && int(operands.size()) != opArity(*op)) {
      failAt(opAt,
             fmt::format("{} takes {} operands, got {}", opname, opArity(*op), operands.size()));
      return false;
    }
    if (*op != Op::Input && *op != Op::Constant) {
      std::vector<Type> in;
      for (ValueId v : operands)
        in.push_back(g.type(v));
      auto inferred = inferType(*op, in, *a);
      if (!inferred) {
        failAt(opAt, inferred.diag().message);
        return false;
      }
      if (!(*inferred == *t)) {
        failAt(opAt, fmt::format("{} is written as {} but its operands give {}", opname, str(*t),
                                 str(*inferred)));
        return false;
      }
    }
    if (*op == Op::Input && !a->has("name"))
      a->set("name", name);
    ValueId v = g.addTyped(*op, *t, operands, *a);
    g.node(v).group = group;
    names_[name] = v;
    return true;
  }

  bool parseReturn(Graph &g) {
    skipSpace();
    while (peek() != '}') {
      std::string name = ident();
      if (name.empty()) {
        fail("expected an output name");
        return false;
      }
      if (!expect('='))
        return false;
      auto v = valueRef(g);
      if (!v)
        return false;
      g.addOutput(name, *v);
      skipSpace();
      if (peek() == ',')
        ++pos_;
      skipSpace();
      if (atEnd()) {
        fail("unexpected end of input in 'return'");
        return false;
      }
    }
    return true;
  }

  std::string_view text_;
  std::string file_;
  size_t pos_ = 0;
  std::optional<Diag> err_;
  std::map<std::string, ValueId> names_;
  static constexpr int kMaxGroups = 1 << 20;
  std::map<int, KernelGroup> groups_; ///< by the index in the label @kI
};

} // namespace

Expected<Graph> parseGraph(std::string_view text, const std::string &file) {
  return IRParser(text, file).run();
}

} // namespace graphc::ir
