// frontend/ModelFile.cpp - lexer and one-pass evaluator for `.model` files.
//
// There is no syntax tree: the parser evaluates each expression as it reads
// it, which is enough for a language without control flow. Expressions follow
// Lua's own scheme (`subExpression` with left/right priorities), so
// left-associative chains such as `1+1+1...` stay flat and only true nesting
// recurses; that nesting is capped. Tables and modules live in arenas owned by
// the evaluator and values point into them, which gives Lua's reference
// semantics without reference cycles for a destructor to chase. Every other
// thing a file can make us allocate (variables, table entries, modules,
// concatenated strings) has a limit below. The first error ends evaluation: it
// is thrown as a `Failure` and comes back out of `parseModel` as a Diag.
#include "frontend/ModelFile.h"
#include "frontend/LuaModel.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace graphc::frontend {
namespace {

using nn::SourceLoc;

constexpr int kMaxNesting = 200;
constexpr size_t kMaxListLength = 200; ///< names, values or call arguments
constexpr size_t kMaxTableEntries = 1'000'000;
constexpr size_t kMaxTotalTableEntries = 2'000'000;
constexpr size_t kMaxTables = 100'000;
constexpr size_t kMaxVariables = 100'000;
constexpr size_t kMaxStringBytes = 1 << 20;
constexpr size_t kMaxTotalConcatBytes = 64 << 20;
constexpr size_t kMaxModules = 100'000;
constexpr int kMaxModuleDepth = 100;
constexpr double kMaxSize = 2147483647.0;

struct Failure {
  SourceLoc loc;
  std::string message;
};

[[noreturn]] void fail(SourceLoc loc, std::string message) {
  throw Failure{loc, std::move(message)};
}

bool isDigit(int c) { return c >= '0' && c <= '9'; }
bool isHexDigit(int c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isAlpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isAlnum(int c) { return isAlpha(c) || isDigit(c); }

std::string formatNumber(double x) {
  if (std::isnan(x))
    return "nan";
  return fmt::format("{}", x);
}

// ---------------------------------------------------------------------------
// Lexer

// clang-format off
enum class Tok {
  Eof, Name, Number, String,
  And, Break, Do, Else, Elseif, End, False, For, Function, Goto, If, In,
  Local, Nil, Not, Or, Repeat, Return, Then, True, Until, While,
  Plus, Minus, Star, Slash, DoubleSlash, Percent, Caret, Hash, Amp, Tilde,
  Pipe, Shl, Shr, Eq, Ne, Le, Ge, Lt, Gt, Assign, LParen, RParen, LBrace,
  RBrace, LBracket, RBracket, DoubleColon, Semi, Colon, Comma, Dot, Concat,
  Ellipsis,
};
// clang-format on

const std::unordered_map<std::string_view, Tok> &keywords() {
  // clang-format off
  static const std::unordered_map<std::string_view, Tok> table = {
      {"and", Tok::And},       {"break", Tok::Break},
      {"do", Tok::Do},         {"else", Tok::Else},
      {"elseif", Tok::Elseif}, {"end", Tok::End},
      {"false", Tok::False},   {"for", Tok::For},
      {"function", Tok::Function}, {"goto", Tok::Goto},
      {"if", Tok::If},         {"in", Tok::In},
      {"local", Tok::Local},   {"nil", Tok::Nil},
      {"not", Tok::Not},       {"or", Tok::Or},
      {"repeat", Tok::Repeat}, {"return", Tok::Return},
      {"then", Tok::Then},     {"true", Tok::True},
      {"until", Tok::Until},   {"while", Tok::While},
  };
  // clang-format on
  return table;
}

struct Token {
  Tok kind = Tok::Eof;
  std::string_view text; ///< the token as written
  double number = 0;
  std::string str; ///< a string literal's value
  SourceLoc loc;
};

/// `'x'` for a token, `end of file` at the end.
std::string describe(const Token &t) { return t.kind == Tok::Eof ? "end of file" : quote(t.text); }

class Lexer {
public:
  explicit Lexer(std::string_view src) : src_(src) {
    if (src_.substr(0, 3) == "\xEF\xBB\xBF")
      pos_ = lineStart_ = 3;
    if (at(0) == '#')
      skipLine();
  }

  Token next() {
    skipSpaceAndComments();
    Token t;
    t.loc = here();
    size_t start = pos_;
    if (pos_ >= src_.size()) {
      t.kind = Tok::Eof;
      return t;
    }
    int c = at(0);
    if (isAlpha(c)) {
      while (isAlnum(at(0)))
        ++pos_;
      t.text = src_.substr(start, pos_ - start);
      auto kw = keywords().find(t.text);
      t.kind = kw == keywords().end() ? Tok::Name : kw->second;
      return t;
    }
    if (isDigit(c) || (c == '.' && isDigit(at(1)))) {
      readNumber(t);
      return t;
    }
    if (c == '"' || c == '\'') {
      readShortString(t);
      return t;
    }
    if (c == '[') {
      size_t level = 0;
      while (at(1 + level) == '=')
        ++level;
      if (at(1 + level) == '[') {
        pos_ += level + 2;
        if (!skipLongBracket(level, &t.str))
          fail(t.loc, "unterminated long string");
        t.kind = Tok::String;
        t.text = src_.substr(start, pos_ - start);
        return t;
      }
      if (level > 0)
        fail(t.loc, "invalid long string delimiter " + quote(src_.substr(start, level + 1)));
    }
    t.kind = punctuation();
    if (t.kind == Tok::Eof)
      fail(t.loc, "unexpected character " + quote(src_.substr(pos_, 1)));
    t.text = src_.substr(start, pos_ - start);
    return t;
  }

private:
  int at(size_t ahead) const {
    return pos_ + ahead < src_.size() ? (unsigned char)src_[pos_ + ahead] : -1;
  }

  SourceLoc here() const { return {line_, int(pos_ - lineStart_) + 1}; }

  /// Consumes one line break: \n, \r, \r\n or \n\r.
  void newline() {
    int c = at(0);
    ++pos_;
    if ((at(0) == '\n' || at(0) == '\r') && at(0) != c)
      ++pos_;
    ++line_;
    lineStart_ = pos_;
  }

  void skipLine() {
    while (pos_ < src_.size() && at(0) != '\n' && at(0) != '\r')
      ++pos_;
  }

  void skipSpaceAndComments() {
    for (;;) {
      int c = at(0);
      if (c == ' ' || c == '\t' || c == '\v' || c == '\f') {
        ++pos_;
      } else if (c == '\n' || c == '\r') {
        newline();
      } else if (c == '-' && at(1) == '-') {
        SourceLoc start = here();
        pos_ += 2;
        size_t level = 0;
        if (at(0) == '[') {
          while (at(1 + level) == '=')
            ++level;
          if (at(1 + level) == '[') {
            pos_ += level + 2;
            if (!skipLongBracket(level, nullptr))
              fail(start, "unterminated block comment");
            continue;
          }
        }
        skipLine();
      } else {
        return;
      }
    }
  }

  /// After `[==[`: skips to the matching `]==]`, collecting the text in `out`.
  bool skipLongBracket(size_t level, std::string *out) {
    if (at(0) == '\n' || at(0) == '\r')
      newline();
    for (;;) {
      int c = at(0);
      if (c < 0)
        return false;
      if (c == ']') {
        size_t eq = 0;
        while (at(1 + eq) == '=')
          ++eq;
        if (eq == level && at(1 + eq) == ']') {
          pos_ += eq + 2;
          return true;
        }
        if (out)
          out->append(src_.substr(pos_, eq + 1));
        pos_ += eq + 1;
      } else if (c == '\n' || c == '\r') {
        newline();
        if (out)
          *out += '\n';
      } else {
        if (out)
          *out += char(c);
        ++pos_;
      }
    }
  }

  void readNumber(Token &t) {
    size_t start = pos_;
    bool hex = at(0) == '0' && (at(1) == 'x' || at(1) == 'X');
    if (hex)
      pos_ += 2;
    int exp1 = hex ? 'p' : 'e', exp2 = hex ? 'P' : 'E';
    for (;;) {
      int c = at(0);
      if (c == exp1 || c == exp2) {
        ++pos_;
        if (at(0) == '+' || at(0) == '-')
          ++pos_;
      } else if (isHexDigit(c) || c == '.') {
        ++pos_;
      } else {
        break;
      }
    }
    bool touching = isAlnum(at(0));
    while (isAlnum(at(0)))
      ++pos_;
    t.kind = Tok::Number;
    t.text = src_.substr(start, pos_ - start);
    auto malformed = [&] { fail(t.loc, "malformed number " + quote(t.text)); };
    if (touching)
      malformed();
    if (hex) {
      std::string_view digits = t.text.substr(2);
      if (digits.empty())
        malformed();
      double v = 0;
      for (char d : digits) {
        if (!isHexDigit((unsigned char)d))
          malformed();
        v = v * 16 + (isDigit(d) ? d - '0' : (d | 0x20) - 'a' + 10);
      }
      t.number = v;
      return;
    }
    const char *first = t.text.data(), *last = first + t.text.size();
    auto [ptr, ec] = std::from_chars(first, last, t.number);
    if (ptr != last)
      malformed();
    if (ec == std::errc::result_out_of_range) {
      size_t e = t.text.find_first_of("eE");
      bool tiny =
          e == std::string_view::npos
              ? t.text.substr(0, t.text.find('.')).find_first_not_of('0') == std::string_view::npos
              : t.text.substr(e + 1).starts_with('-');
      t.number = tiny ? 0.0 : HUGE_VAL;
    } else if (ec != std::errc()) {
      malformed();
    }
  }

  void readShortString(Token &t) {
    size_t start = pos_;
    int quoteChar = at(0);
    ++pos_;
    for (;;) {
      int c = at(0);
      if (c < 0 || c == '\n' || c == '\r')
        fail(t.loc, "unterminated string");
      if (c == quoteChar) {
        ++pos_;
        break;
      }
      if (c == '\\') {
        readEscape(t.str);
        continue;
      }
      if (c < 0x20 && c != '\t')
        fail(here(), "unexpected character " + quote(src_.substr(pos_, 1)) + " in string");
      t.str += char(c);
      ++pos_;
    }
    t.kind = Tok::String;
    t.text = src_.substr(start, pos_ - start);
  }

  void readEscape(std::string &out) {
    SourceLoc loc = here();
    size_t start = pos_;
    int c = at(1);
    pos_ += 2;
    switch (c) {
    case 'n': out += '\n'; return;
    case 't': out += '\t'; return;
    case 'r': out += '\r'; return;
    case 'a': out += '\a'; return;
    case 'b': out += '\b'; return;
    case 'f': out += '\f'; return;
    case 'v': out += '\v'; return;
    case '\\': out += '\\'; return;
    case '"': out += '"'; return;
    case '\'': out += '\''; return;
    case '\n':
    case '\r':
      --pos_;
      newline();
      out += '\n';
      return;
    case 'x':
      if (isHexDigit(at(0)) && isHexDigit(at(1))) {
        out += char(std::stoi(std::string(src_.substr(pos_, 2)), nullptr, 16));
        pos_ += 2;
        return;
      }
      fail(loc, "invalid escape sequence " + quote(src_.substr(start, 4)));
    case -1: fail(loc, "unterminated string");
    default:
      if (isDigit(c)) {
        int v = c - '0';
        for (int i = 0; i < 2 && isDigit(at(0)); ++i, ++pos_)
          v = v * 10 + (at(0) - '0');
        if (v > 255)
          fail(loc, fmt::format("decimal escape '\\{}' is larger than 255", v));
        out += char(v);
        return;
      }
      fail(loc, "invalid escape sequence " + quote(src_.substr(start, 2)));
    }
  }

  Tok punctuation() {
    auto take = [&](size_t n, Tok k) {
      pos_ += n;
      return k;
    };
    int c = at(0), d = at(1);
    switch (c) {
    case '+': return take(1, Tok::Plus);
    case '-': return take(1, Tok::Minus);
    case '*': return take(1, Tok::Star);
    case '/': return d == '/' ? take(2, Tok::DoubleSlash) : take(1, Tok::Slash);
    case '%': return take(1, Tok::Percent);
    case '^': return take(1, Tok::Caret);
    case '#': return take(1, Tok::Hash);
    case '&': return take(1, Tok::Amp);
    case '|': return take(1, Tok::Pipe);
    case '~': return d == '=' ? take(2, Tok::Ne) : take(1, Tok::Tilde);
    case '<': return d == '<' ? take(2, Tok::Shl) : d == '=' ? take(2, Tok::Le) : take(1, Tok::Lt);
    case '>': return d == '>' ? take(2, Tok::Shr) : d == '=' ? take(2, Tok::Ge) : take(1, Tok::Gt);
    case '=': return d == '=' ? take(2, Tok::Eq) : take(1, Tok::Assign);
    case '(': return take(1, Tok::LParen);
    case ')': return take(1, Tok::RParen);
    case '{': return take(1, Tok::LBrace);
    case '}': return take(1, Tok::RBrace);
    case '[': return take(1, Tok::LBracket);
    case ']': return take(1, Tok::RBracket);
    case ';': return take(1, Tok::Semi);
    case ':': return d == ':' ? take(2, Tok::DoubleColon) : take(1, Tok::Colon);
    case ',': return take(1, Tok::Comma);
    case '.':
      if (d != '.')
        return take(1, Tok::Dot);
      return at(2) == '.' ? take(3, Tok::Ellipsis) : take(2, Tok::Concat);
    default: return Tok::Eof;
    }
  }

  std::string_view src_;
  size_t pos_ = 0;
  size_t lineStart_ = 0;
  int line_ = 1;
};

// ---------------------------------------------------------------------------
// Values

struct Nil {};
struct Str {
  std::shared_ptr<const std::string> s;
};
struct Table;
struct TableRef {
  Table *t;
};
struct ModuleRef {
  nn::Module *m;
};
enum class Space { Nn, Optim, Torch };
enum class Builtin { Require, TorchNoop };
struct NnCtor {
  int index; ///< into ctors()
};
struct OptimRef {
  int index; ///< into kOptimizers
  SourceLoc loc;
};

using Value = std::variant<Nil, double, bool, Str, TableRef, ModuleRef, nn::Criterion, OptimRef,
                           Space, Builtin, NnCtor>;

struct Field {
  Value value;
  SourceLoc keyLoc;
};

struct Table {
  std::vector<Value> array;
  std::vector<std::pair<std::string, Field>> fields; ///< in insertion order
  std::unordered_map<std::string, size_t> index;     ///< into fields
  SourceLoc loc;

  const Field *find(const std::string &key) const {
    auto it = index.find(key);
    return it == index.end() ? nullptr : &fields[it->second].second;
  }
};

struct OptimizerInfo {
  const char *name;
  std::vector<std::string_view> keys;
};

const std::vector<OptimizerInfo> &optimizers() {
  static const std::vector<OptimizerInfo> table = {
      {"sgd",
       {"learningRate", "learningRateDecay", "weightDecay", "momentum", "dampening", "nesterov"}},
      {"adagrad", {"learningRate", "learningRateDecay", "weightDecay"}},
      {"adam", {"learningRate", "learningRateDecay", "beta1", "beta2", "epsilon", "weightDecay"}},
  };
  return table;
}

/// One `nn.X` constructor: a module kind or a criterion kind.
struct Ctor {
  const char *name;
  std::optional<nn::Kind> kind;
  nn::CriterionKind criterion = nn::CriterionKind::ClassNLL;
  size_t minArgs = 0, maxArgs = 0;
  const char *params = ""; ///< for messages: `(inputSize, outputSize)`
  size_t unlisted = 0;     ///< optional arguments left out of messages
};

const std::vector<Ctor> &ctors() {
  using K = nn::Kind;
  using C = nn::CriterionKind;
  // clang-format off
  static const std::vector<Ctor> table = {
      {"Sequential", K::Sequential, {}, 0, 0},
      {"View", K::View, {}, 1, 4, "(size1, [size2, size3, size4])"},
      {"Reshape", K::Reshape, {}, 1, 4, "(size1, [size2, size3, size4])"},
      {"Linear", K::Linear, {}, 2, 2, "(inputSize, outputSize)", 1},
      {"ReLU", K::ReLU, {}, 0, 1, "([inplace])"},
      {"Tanh", K::Tanh, {}, 0, 0},
      {"Sigmoid", K::Sigmoid, {}, 0, 0},
      {"SoftMax", K::SoftMax, {}, 0, 0},
      {"LogSoftMax", K::LogSoftMax, {}, 0, 0},
      {"Dropout", K::Dropout, {}, 0, 1, "([p])"},
      {"SpatialConvolution", K::SpatialConvolution, {}, 4, 8,
       "(nInputPlane, nOutputPlane, kW, kH, [dW, dH, [padW, padH]])"},
      {"SpatialConvolutionMM", K::SpatialConvolutionMM, {}, 4, 8,
       "(nInputPlane, nOutputPlane, kW, kH, [dW, dH, [padW, padH]])"},
      {"SpatialMaxPooling", K::SpatialMaxPooling, {}, 2, 6,
       "(kW, kH, [dW, dH, [padW, padH]])"},
      {"ClassNLLCriterion", std::nullopt, C::ClassNLL, 0, 0},
      {"CrossEntropyCriterion", std::nullopt, C::CrossEntropy, 0, 0},
      {"MSECriterion", std::nullopt, C::MSE, 0, 0},
  };
  // clang-format on
  return table;
}

std::string supportedModules() {
  std::string out;
  for (const Ctor &c : ctors())
    out += fmt::format("{}nn.{}", out.empty() ? "" : ", ", c.name);
  return out;
}

/// `number`, `nn.Linear module`, ... for "cannot call a X value" messages.
std::string typeName(const Value &v) {
  struct Visitor {
    std::string operator()(Nil) const { return "nil"; }
    std::string operator()(double) const { return "number"; }
    std::string operator()(bool) const { return "boolean"; }
    std::string operator()(const Str &) const { return "string"; }
    std::string operator()(TableRef) const { return "table"; }
    std::string operator()(ModuleRef r) const { return nn::kindName(r.m->kind) + " module"; }
    std::string operator()(const nn::Criterion &) const { return "criterion"; }
    std::string operator()(OptimRef) const { return "optimizer"; }
    std::string operator()(Space) const { return "package"; }
    std::string operator()(Builtin) const { return "function"; }
    std::string operator()(NnCtor) const { return "function"; }
  };
  return std::visit(Visitor{}, v);
}

/// The value itself where short (`-5`, `string 'abc'`), else its type.
std::string describe(const Value &v) {
  if (auto *d = std::get_if<double>(&v))
    return formatNumber(*d);
  if (auto *b = std::get_if<bool>(&v))
    return *b ? "true" : "false";
  if (auto *s = std::get_if<Str>(&v))
    return "string " + quote(*s->s);
  if (auto *c = std::get_if<nn::Criterion>(&v))
    return "criterion " + c->str();
  if (auto *o = std::get_if<OptimRef>(&v))
    return fmt::format("optimizer optim.{}", optimizers()[o->index].name);
  if (auto *r = std::get_if<ModuleRef>(&v))
    return "module " + r->m->str();
  if (auto *sp = std::get_if<Space>(&v))
    return *sp == Space::Nn      ? "package nn"
           : *sp == Space::Optim ? "package optim"
                                 : "package torch";
  return typeName(v);
}

int moduleDepth(const nn::Module &m) {
  int d = 0;
  for (const nn::Module &c : m.children)
    d = std::max(d, moduleDepth(c));
  return d + 1;
}

size_t moduleCount(const nn::Module &m) {
  size_t n = 1;
  for (const nn::Module &c : m.children)
    n += moduleCount(c);
  return n;
}

// ---------------------------------------------------------------------------
// Evaluator

struct Arg {
  Value value;
  SourceLoc loc;
};

/// A suffixed expression before its last step is taken: a variable name or
/// `container[key]` stays unresolved so that it can be assigned to.
struct Ref {
  enum Form { Resolved, Name, Indexed } form = Resolved;
  Value value; ///< the value, or the container when Indexed
  Value key;
  std::string name;
  bool isCall = false;
  SourceLoc loc;    ///< where the expression starts
  SourceLoc keyLoc; ///< where the name or key is written
};

enum class Use { Value, Call, Index };

class Evaluator {
public:
  explicit Evaluator(std::string_view text) : lex_(text) {
    auto define = [&](const char *name, Value v) { vars_[name] = Binding{std::move(v), {}}; };
    define("nn", Space::Nn);
    define("optim", Space::Optim);
    define("torch", Space::Torch);
    define("require", Builtin::Require);
  }

  nn::ModelSpec run() {
    advance();
    while (tok_.kind != Tok::Eof)
      statement();
    return finish();
  }

private:
  struct Binding {
    Value value;
    SourceLoc loc;
  };

  // --- tokens -------------------------------------------------------------

  void advance() {
    if (ahead_) {
      tok_ = std::move(*ahead_);
      ahead_.reset();
    } else {
      tok_ = lex_.next();
    }
  }

  const Token &peek() {
    if (!ahead_)
      ahead_ = lex_.next();
    return *ahead_;
  }

  [[noreturn]] void unexpected(const char *expected) {
    fail(tok_.loc, fmt::format("unexpected {}; expected {}", describe(tok_), expected));
  }

  Token expectName(const char *after) {
    if (tok_.kind != Tok::Name)
      fail(tok_.loc, fmt::format("unexpected {}; expected a name after {}", describe(tok_), after));
    Token t = std::move(tok_);
    advance();
    return t;
  }

  void expectClose(Tok kind, const char *close, const char *open, SourceLoc openLoc) {
    if (tok_.kind != kind)
      fail(tok_.loc, fmt::format("unexpected {}; expected {} to close {} at {}:{}", describe(tok_),
                                 close, open, openLoc.line, openLoc.col));
    advance();
  }

  // --- statements ---------------------------------------------------------

  [[noreturn]] void unsupported(const char *construct) {
    fail(tok_.loc, fmt::format("{} are not supported in model files", construct));
  }

  void statement() {
    switch (tok_.kind) {
    case Tok::Semi: advance(); return;
    case Tok::Local: localStatement(); return;
    case Tok::For: unsupported("'for' loops");
    case Tok::While: unsupported("'while' loops");
    case Tok::Repeat: unsupported("'repeat' loops");
    case Tok::Function: unsupported("'function' definitions");
    case Tok::If: unsupported("'if' statements");
    case Tok::Return: unsupported("'return' statements");
    case Tok::Goto: unsupported("'goto' statements");
    case Tok::Break: unsupported("'break' statements");
    case Tok::Do: unsupported("'do' blocks");
    case Tok::DoubleColon: unsupported("labels ('::')");
    default: expressionStatement(); return;
    }
  }

  void localStatement() {
    advance();
    if (tok_.kind == Tok::Function)
      unsupported("'function' definitions");
    std::vector<Token> names;
    do {
      if (!names.empty())
        advance();
      if (names.size() == kMaxListLength)
        fail(tok_.loc, fmt::format("too many names in one 'local' (more "
                                   "than {})",
                                   kMaxListLength));
      names.push_back(expectName("'local'"));
    } while (tok_.kind == Tok::Comma);
    std::vector<Value> values;
    if (tok_.kind == Tok::Assign) {
      advance();
      values = expressionList(names.size());
    }
    for (size_t i = 0; i < names.size(); ++i)
      setVariable(std::string(names[i].text), i < values.size() ? values[i] : Value(Nil{}),
                  names[i].loc);
  }

  void expressionStatement() {
    if (tok_.kind != Tok::Name && tok_.kind != Tok::LParen)
      fail(tok_.loc, fmt::format("unexpected {}; expected a statement", describe(tok_)));
    Ref first = suffixedExpression();
    if (tok_.kind != Tok::Assign && tok_.kind != Tok::Comma) {
      if (!first.isCall)
        fail(tok_.loc, fmt::format("unexpected {}; expected '=' (a statement is an "
                                   "assignment or a call)",
                                   describe(tok_)));
      return;
    }
    std::vector<Ref> targets;
    targets.push_back(std::move(first));
    checkAssignable(targets.back());
    while (tok_.kind == Tok::Comma) {
      advance();
      if (targets.size() == kMaxListLength)
        fail(tok_.loc, fmt::format("too many variables in one assignment "
                                   "(more than {})",
                                   kMaxListLength));
      if (tok_.kind != Tok::Name && tok_.kind != Tok::LParen)
        unexpected("a variable");
      targets.push_back(suffixedExpression());
      checkAssignable(targets.back());
    }
    if (tok_.kind != Tok::Assign)
      unexpected("'='");
    advance();
    std::vector<Value> values = expressionList(targets.size());
    for (size_t i = 0; i < targets.size(); ++i)
      store(targets[i], i < values.size() ? values[i] : Value(Nil{}));
  }

  void checkAssignable(const Ref &r) {
    if (r.form == Ref::Resolved)
      fail(r.loc, "cannot assign to this expression; expected a variable or "
                  "a table field");
  }

  /// Evaluates `e1, e2, ...`, keeping the first `keep` values.
  std::vector<Value> expressionList(size_t keep) {
    std::vector<Value> values;
    for (;;) {
      Value v = expression();
      if (values.size() < keep)
        values.push_back(std::move(v));
      if (tok_.kind != Tok::Comma)
        return values;
      advance();
    }
  }

  void setVariable(std::string name, Value v, SourceLoc loc) {
    auto it = vars_.find(name);
    if (it != vars_.end()) {
      it->second = Binding{std::move(v), loc};
      return;
    }
    if (vars_.size() >= kMaxVariables)
      fail(loc, fmt::format("too many variables (more than {})", kMaxVariables));
    vars_.emplace(std::move(name), Binding{std::move(v), loc});
  }

  void store(const Ref &target, Value v) {
    if (target.form == Ref::Name) {
      setVariable(target.name, std::move(v), target.keyLoc);
      return;
    }
    auto *t = std::get_if<TableRef>(&target.value);
    if (!t)
      fail(target.keyLoc,
           fmt::format("cannot assign to a field of a {} value", typeName(target.value)));
    setEntry(*t->t, target.key, std::move(v), target.keyLoc);
  }

  // --- expressions --------------------------------------------------------

  Value expression() { return subExpression(0); }

  enum class Op { None, Add, Sub, Mul, Div, Mod, Pow, Concat };

  struct OpInfo {
    Op op;
    int left, right;
  };

  /// Lua 5.1's binary operators and priorities; unsupported ones fail here.
  OpInfo binaryOperator() {
    switch (tok_.kind) {
    case Tok::Plus: return {Op::Add, 6, 6};
    case Tok::Minus: return {Op::Sub, 6, 6};
    case Tok::Star: return {Op::Mul, 7, 7};
    case Tok::Slash: return {Op::Div, 7, 7};
    case Tok::Percent: return {Op::Mod, 7, 7};
    case Tok::Caret: return {Op::Pow, 10, 9};
    case Tok::Concat: return {Op::Concat, 5, 4};
    case Tok::Eq:
    case Tok::Ne:
    case Tok::Lt:
    case Tok::Le:
    case Tok::Gt:
    case Tok::Ge:
      fail(tok_.loc, fmt::format("comparison operator {} is not supported in "
                                 "model files",
                                 quote(tok_.text)));
    case Tok::And:
    case Tok::Or:
      fail(tok_.loc, fmt::format("logical operator {} is not supported in "
                                 "model files",
                                 quote(tok_.text)));
    case Tok::DoubleSlash:
    case Tok::Amp:
    case Tok::Pipe:
    case Tok::Tilde:
    case Tok::Shl:
    case Tok::Shr:
      fail(tok_.loc, fmt::format("operator {} is not supported in model files", quote(tok_.text)));
    default: return {Op::None, 0, 0};
    }
  }

  Value subExpression(int limit) {
    if (++depth_ > kMaxNesting)
      fail(tok_.loc, fmt::format("nesting too deep (more than {} levels)", kMaxNesting));
    Value v;
    if (tok_.kind == Tok::Minus) {
      SourceLoc loc = tok_.loc;
      advance();
      Value x = subExpression(8);
      v = -number(x, "-", loc);
    } else if (tok_.kind == Tok::Not) {
      fail(tok_.loc, "logical operator 'not' is not supported in model files");
    } else if (tok_.kind == Tok::Hash) {
      fail(tok_.loc, "length operator '#' is not supported in model files");
    } else if (tok_.kind == Tok::Tilde) {
      fail(tok_.loc, "operator '~' is not supported in model files");
    } else {
      v = simpleExpression();
    }
    for (OpInfo info = binaryOperator(); info.op != Op::None && info.left > limit;
         info = binaryOperator()) {
      SourceLoc loc = tok_.loc;
      std::string name(tok_.text);
      advance();
      Value rhs = subExpression(info.right);
      v = binary(info.op, name, v, rhs, loc);
    }
    --depth_;
    return v;
  }

  double number(const Value &v, std::string_view op, SourceLoc loc) {
    if (auto *d = std::get_if<double>(&v))
      return *d;
    fail(loc, fmt::format("cannot apply {} to a {} value", quote(op), typeName(v)));
  }

  Value binary(Op op, const std::string &name, const Value &a, const Value &b, SourceLoc loc) {
    if (op == Op::Concat)
      return concat(a, b, loc);
    double x = number(a, name, loc), y = number(b, name, loc);
    switch (op) {
    case Op::Add: return x + y;
    case Op::Sub: return x - y;
    case Op::Mul: return x * y;
    case Op::Div: return x / y;
    case Op::Mod: {
      double m = std::fmod(x, y);
      if (m != 0 && (m < 0) != (y < 0))
        m += y;
      return m;
    }
    case Op::Pow: return std::pow(x, y);
    default: return Nil{};
    }
  }

  Value concat(const Value &a, const Value &b, SourceLoc loc) {
    auto *x = std::get_if<Str>(&a);
    auto *y = std::get_if<Str>(&b);
    if (!x || !y)
      fail(loc, fmt::format("'..' concatenates strings only, got a {} value", typeName(x ? b : a)));
    size_t n = x->s->size() + y->s->size();
    if (n > kMaxStringBytes || concatBytes_ + n > kMaxTotalConcatBytes)
      fail(loc, "string too long");
    concatBytes_ += n;
    return Str{std::make_shared<const std::string>(*x->s + *y->s)};
  }

  Value simpleExpression() {
    switch (tok_.kind) {
    case Tok::Number: {
      double v = tok_.number;
      advance();
      return v;
    }
    case Tok::String: {
      Value v = Str{std::make_shared<const std::string>(std::move(tok_.str))};
      advance();
      return v;
    }
    case Tok::Nil: advance(); return Nil{};
    case Tok::True: advance(); return true;
    case Tok::False: advance(); return false;
    case Tok::LBrace: return tableConstructor();
    case Tok::Function: unsupported("'function' definitions");
    case Tok::Ellipsis: unsupported("varargs ('...')");
    case Tok::Name:
    case Tok::LParen: {
      Ref r = suffixedExpression();
      return load(r, Use::Value);
    }
    default: unexpected("an expression");
    }
  }

  Ref suffixedExpression() {
    Ref r;
    r.loc = tok_.loc;
    if (tok_.kind == Tok::Name) {
      r.form = Ref::Name;
      r.name = std::string(tok_.text);
      r.keyLoc = tok_.loc;
      advance();
    } else if (tok_.kind == Tok::LParen) {
      SourceLoc open = tok_.loc;
      advance();
      r.value = expression();
      expectClose(Tok::RParen, "')'", "'('", open);
    } else {
      unexpected("an expression");
    }
    for (;;) {
      switch (tok_.kind) {
      case Tok::Dot: {
        Value base = load(r, Use::Index);
        advance();
        Token name = expectName("'.'");
        r = indexed(std::move(base), Str{std::make_shared<const std::string>(name.text)}, r.loc,
                    name.loc);
        break;
      }
      case Tok::LBracket: {
        Value base = load(r, Use::Index);
        SourceLoc open = tok_.loc;
        advance();
        Value key = expression();
        expectClose(Tok::RBracket, "']'", "'['", open);
        r = indexed(std::move(base), std::move(key), r.loc, open);
        break;
      }
      case Tok::Colon: {
        Value base = load(r, Use::Index);
        advance();
        Token name = expectName("':'");
        std::vector<Arg> args = callArguments();
        r = called(method(base, name, args), r.loc);
        break;
      }
      case Tok::LParen:
      case Tok::String:
      case Tok::LBrace: {
        Value callee = load(r, Use::Call);
        std::vector<Arg> args = callArguments();
        r = called(call(callee, args, r.loc), r.loc);
        break;
      }
      default: return r;
      }
    }
  }

  static Ref indexed(Value base, Value key, SourceLoc loc, SourceLoc keyLoc) {
    Ref r;
    r.form = Ref::Indexed;
    r.value = std::move(base);
    r.key = std::move(key);
    r.loc = loc;
    r.keyLoc = keyLoc;
    return r;
  }

  static Ref called(Value v, SourceLoc loc) {
    Ref r;
    r.value = std::move(v);
    r.isCall = true;
    r.loc = loc;
    return r;
  }

  Value load(const Ref &r, Use use) {
    switch (r.form) {
    case Ref::Resolved: return r.value;
    case Ref::Indexed: return index(r.value, r.key, r.loc, r.keyLoc);
    case Ref::Name: break;
    }
    auto it = vars_.find(r.name);
    if (it != vars_.end())
      return it->second.value;
    switch (use) {
    case Use::Call: fail(r.loc, fmt::format("unknown function {}", quote(r.name)));
    case Use::Index:
      fail(r.loc, fmt::format("{} is not defined (model files can use nn, "
                              "optim and torch)",
                              quote(r.name)));
    case Use::Value: break;
    }
    fail(r.loc, fmt::format("{} is not defined", quote(r.name)));
  }

  std::vector<Arg> callArguments() {
    std::vector<Arg> args;
    SourceLoc open = tok_.loc;
    if (tok_.kind == Tok::String || tok_.kind == Tok::LBrace) {
      args.push_back({simpleExpression(), open});
      return args;
    }
    if (tok_.kind != Tok::LParen)
      unexpected("'(' to start the arguments");
    advance();
    while (tok_.kind != Tok::RParen && tok_.kind != Tok::Eof) {
      if (args.size() == kMaxListLength)
        fail(tok_.loc, fmt::format("too many arguments (more than {})", kMaxListLength));
      SourceLoc loc = tok_.loc;
      args.push_back({expression(), loc});
      if (tok_.kind != Tok::Comma)
        break;
      advance();
    }
    expectClose(Tok::RParen, "')'", "'('", open);
    return args;
  }

  // --- tables -------------------------------------------------------------

  Value tableConstructor() {
    SourceLoc open = tok_.loc;
    advance();
    if (tables_.size() >= kMaxTables)
      fail(open, fmt::format("too many tables (more than {})", kMaxTables));
    Table &t = tables_.emplace_back();
    t.loc = open;
    while (tok_.kind != Tok::RBrace && tok_.kind != Tok::Eof) {
      SourceLoc loc = tok_.loc;
      if (tok_.kind == Tok::Name && peek().kind == Tok::Assign) {
        std::string key(tok_.text);
        advance();
        advance();
        Value v = expression();
        setEntry(t, Str{std::make_shared<const std::string>(std::move(key))}, std::move(v), loc);
      } else if (tok_.kind == Tok::LBracket) {
        advance();
        Value key = expression();
        expectClose(Tok::RBracket, "']'", "'['", loc);
        if (tok_.kind != Tok::Assign)
          unexpected("'='");
        advance();
        Value v = expression();
        setEntry(t, key, std::move(v), loc);
      } else {
        Value v = expression();
        append(t, std::move(v), loc);
      }
      if (tok_.kind != Tok::Comma && tok_.kind != Tok::Semi)
        break;
      advance();
    }
    expectClose(Tok::RBrace, "'}'", "'{'", open);
    return TableRef{&t};
  }

  void countEntry(const Table &t, SourceLoc loc) {
    if (t.array.size() + t.fields.size() >= kMaxTableEntries)
      fail(loc, fmt::format("table too large (more than {} entries)", kMaxTableEntries));
    if (++tableEntries_ > kMaxTotalTableEntries)
      fail(loc,
           fmt::format("too many table entries in total (more than {})", kMaxTotalTableEntries));
  }

  void append(Table &t, Value v, SourceLoc loc) {
    countEntry(t, loc);
    t.array.push_back(std::move(v));
  }

  void setEntry(Table &t, const Value &key, Value v, SourceLoc loc) {
    if (auto *s = std::get_if<Str>(&key)) {
      auto it = t.index.find(*s->s);
      if (it != t.index.end()) {
        t.fields[it->second].second = Field{std::move(v), loc};
        return;
      }
      countEntry(t, loc);
      t.index.emplace(*s->s, t.fields.size());
      t.fields.emplace_back(*s->s, Field{std::move(v), loc});
      return;
    }
    if (auto *d = std::get_if<double>(&key)) {
      double n = double(t.array.size());
      if (*d >= 1 && *d <= n && *d == std::floor(*d)) {
        t.array[size_t(*d) - 1] = std::move(v);
        return;
      }
      if (*d == n + 1) {
        append(t, std::move(v), loc);
        return;
      }
      fail(loc, fmt::format("table index {} is out of range: model-file "
                            "tables are lists indexed 1 to {}",
                            formatNumber(*d), t.array.size() + 1));
    }
    fail(loc, fmt::format("a table key must be a string or a number, got a "
                          "{} value",
                          typeName(key)));
  }

  // --- indexing, calls and methods ----------------------------------------

  Value index(const Value &base, const Value &key, SourceLoc loc, SourceLoc keyLoc) {
    if (auto *t = std::get_if<TableRef>(&base)) {
      if (auto *s = std::get_if<Str>(&key)) {
        const Field *f = t->t->find(*s->s);
        return f ? f->value : Value(Nil{});
      }
      if (auto *d = std::get_if<double>(&key)) {
        const auto &a = t->t->array;
        if (*d >= 1 && *d <= double(a.size()) && *d == std::floor(*d))
          return a[size_t(*d) - 1];
      }
      return Nil{};
    }
    auto *space = std::get_if<Space>(&base);
    auto *name = std::get_if<Str>(&key);
    if (space && !name)
      fail(keyLoc, fmt::format("{} can only be indexed with a name", describe(base)));
    if (space && *space == Space::Nn) {
      for (size_t i = 0; i < ctors().size(); ++i)
        if (*name->s == ctors()[i].name)
          return NnCtor{int(i)};
      fail(loc, fmt::format("unknown module {} (supported: {})", quote("nn." + *name->s),
                            supportedModules()));
    }
    if (space && *space == Space::Optim) {
      for (size_t i = 0; i < optimizers().size(); ++i)
        if (*name->s == optimizers()[i].name)
          return OptimRef{int(i), loc};
      fail(loc, fmt::format("unknown optimizer {} (supported: optim.sgd, "
                            "optim.adagrad, optim.adam)",
                            quote("optim." + *name->s)));
    }
    if (space) {
      if (*name->s == "setdefaulttensortype" || *name->s == "manualSeed" ||
          *name->s == "setnumthreads")
        return Builtin::TorchNoop;
      fail(loc, fmt::format("{} is not supported in model files", quote("torch." + *name->s)));
    }
    if (auto *m = std::get_if<ModuleRef>(&base))
      fail(keyLoc, fmt::format("cannot read fields of an {} module; only "
                               "methods such as m:add(...) are supported",
                               nn::kindName(m->m->kind)));
    fail(keyLoc, fmt::format("cannot index a {} value", typeName(base)));
  }

  Value call(const Value &callee, const std::vector<Arg> &args, SourceLoc loc) {
    if (auto *c = std::get_if<NnCtor>(&callee))
      return construct(ctors()[c->index], args, loc);
    if (auto *b = std::get_if<Builtin>(&callee)) {
      if (*b == Builtin::TorchNoop)
        return Nil{};
      return require(args, loc);
    }
    if (auto *o = std::get_if<OptimRef>(&callee))
      fail(loc, fmt::format("optim.{0} is not called in model files; assign "
                            "it instead: optimizer = optim.{0}",
                            optimizers()[o->index].name));
    fail(loc, fmt::format("cannot call a {} value", typeName(callee)));
  }

  Value require(const std::vector<Arg> &args, SourceLoc loc) {
    const Str *name = args.size() == 1 ? std::get_if<Str>(&args[0].value) : nullptr;
    if (!name)
      fail(loc, "require expects one package name, e.g. require 'nn'");
    const std::string &n = *name->s;
    if (n == "nn" || n == "cunn")
      return Space::Nn;
    if (n == "optim")
      return Space::Optim;
    if (n == "torch" || n == "cutorch")
      return Space::Torch;
    fail(loc, fmt::format("require {}: model files can only require nn, "
                          "optim, torch, cunn and cutorch",
                          quote(n)));
  }

  Value method(const Value &self, const Token &name, const std::vector<Arg> &args) {
    std::string_view m = name.text;
    bool conversion =
        m == "float" || m == "cuda" || m == "double" || m == "training" || m == "evaluate";
    auto noArgs = [&] {
      if (!args.empty())
        fail(name.loc, fmt::format(":{}() takes no arguments, got {}", m, args.size()));
      return self;
    };
    if (auto *r = std::get_if<ModuleRef>(&self)) {
      nn::Module &mod = *r->m;
      if (m == "add")
        return add(self, mod, name, args);
      if (conversion)
        return noArgs();
      if (mod.kind == nn::Kind::SpatialMaxPooling && m == "floor")
        return noArgs();
      if (mod.kind == nn::Kind::SpatialMaxPooling && m == "ceil")
        fail(name.loc, "ceil mode (:ceil()) of nn.SpatialMaxPooling is not "
                       "supported");
      fail(name.loc, fmt::format("unknown method {} of {}", quote(m), nn::kindName(mod.kind)));
    }
    if (std::holds_alternative<nn::Criterion>(self)) {
      if (conversion)
        return noArgs();
      fail(name.loc,
           fmt::format("unknown method {} of {}", quote(m), std::get<nn::Criterion>(self).str()));
    }
    fail(name.loc, fmt::format("cannot call method {} on a {} value", quote(m), typeName(self)));
  }

  Value add(const Value &self, nn::Module &container, const Token &name,
            const std::vector<Arg> &args) {
    if (container.kind != nn::Kind::Sequential)
      fail(name.loc, fmt::format("{} has no method 'add' (only nn.Sequential "
                                 "has)",
                                 nn::kindName(container.kind)));
    if (args.size() != 1)
      fail(name.loc, fmt::format(":add() expects one module, got {} arguments", args.size()));
    auto *child = std::get_if<ModuleRef>(&args[0].value);
    if (!child)
      fail(args[0].loc, fmt::format(":add() expects a module, got {}", describe(args[0].value)));
    if (moduleDepth(*child->m) + 1 > kMaxModuleDepth)
      fail(args[0].loc, fmt::format("modules nested too deep (more than {} "
                                    "levels)",
                                    kMaxModuleDepth));
    // Each module was counted when it was made; adding it again copies it
    // again, and that copy is what counts.
    if (!added_.insert(child->m).second)
      chargeModules(moduleCount(*child->m), args[0].loc);
    nn::Module copy = *child->m;
    container.children.push_back(std::move(copy));
    return self;
  }

  void chargeModules(size_t n, SourceLoc loc) {
    moduleCount_ += n;
    if (moduleCount_ > kMaxModules)
      fail(loc, fmt::format("too many modules (more than {})", kMaxModules));
  }

  // --- nn constructors ----------------------------------------------------

  Value construct(const Ctor &c, const std::vector<Arg> &given, SourceLoc loc) {
    std::string name = fmt::format("nn.{}", c.name);
    std::vector<Arg> args = given;
    bool batchView = c.kind == nn::Kind::View && args.size() >= 2 &&
                     std::get_if<double>(&args[0].value) && std::get<double>(args[0].value) == -1;
    if (batchView)
      args.erase(args.begin());
    if (args.size() < c.minArgs || args.size() > c.maxArgs + c.unlisted) {
      std::string expects =
          c.maxArgs == 0 ? "no arguments"
          : c.minArgs == c.maxArgs
              ? fmt::format("{} argument{} {}", c.minArgs, c.minArgs == 1 ? "" : "s", c.params)
          : c.minArgs == 0 ? fmt::format("at most {} argument{} {}", c.maxArgs,
                                         c.maxArgs == 1 ? "" : "s", c.params)
                           : fmt::format("{} to {} arguments {}", c.minArgs, c.maxArgs, c.params);
      fail(loc, fmt::format("{} expects {}, got {}", name, expects, args.size()));
    }
    if (!c.kind) {
      nn::Criterion crit;
      crit.kind = c.criterion;
      crit.loc = loc;
      return crit;
    }

    auto argName = [&](size_t i) {
      std::string_view params = c.params;
      std::vector<std::string_view> names;
      size_t p = 0;
      while (p < params.size()) {
        size_t start = params.find_first_not_of("([ ,])", p);
        if (start == std::string_view::npos)
          break;
        size_t end = params.find_first_of("([ ,])", start);
        names.push_back(params.substr(start, end - start));
        p = end;
      }
      size_t shown = i + (batchView ? 2 : 1);
      if (c.kind == nn::Kind::View || c.kind == nn::Kind::Reshape || i >= names.size())
        return fmt::format("{} argument {}", name, shown);
      return fmt::format("{} argument {} ({})", name, shown, names[i]);
    };
    auto num = [&](size_t i) {
      auto *d = std::get_if<double>(&args[i].value);
      if (!d)
        fail(loc, fmt::format("{} must be a number, got {}", argName(i), describe(args[i].value)));
      return *d;
    };
    auto integer = [&](size_t i, double min, const char *what) {
      double d = num(i);
      if (!(d >= min && d <= kMaxSize && d == std::floor(d)))
        fail(loc,
             fmt::format("{} must be a {} integer, got {}", argName(i), what, formatNumber(d)));
      return int64_t(d);
    };
    auto size = [&](size_t i) { return integer(i, 1, "positive"); };
    auto padding = [&](size_t i) { return integer(i, 0, "non-negative"); };
    auto boolean = [&](size_t i) {
      auto *b = std::get_if<bool>(&args[i].value);
      if (!b)
        fail(loc, fmt::format("{} must be a boolean, got {}", argName(i), describe(args[i].value)));
      return *b;
    };

    nn::Module m;
    switch (*c.kind) {
    case nn::Kind::Sequential: m = nn::Sequential(); break;
    case nn::Kind::View:
    case nn::Kind::Reshape: {
      std::vector<int64_t> dims;
      for (size_t i = 0; i < args.size(); ++i)
        dims.push_back(size(i));
      if (*c.kind == nn::Kind::Reshape) {
        m = nn::Reshape(dims);
      } else {
        m = nn::View(dims[0]);
        m.args.assign(dims.begin(), dims.end());
      }
      break;
    }
    case nn::Kind::Linear:
      if (args.size() == 3 && !boolean(2))
        fail(loc, "nn.Linear without bias (argument 3 false) is not "
                  "supported");
      m = nn::Linear(size(0), size(1));
      break;
    case nn::Kind::ReLU:
      if (args.size() == 1)
        boolean(0);
      m = nn::ReLU();
      break;
    case nn::Kind::Tanh: m = nn::Tanh(); break;
    case nn::Kind::Sigmoid: m = nn::Sigmoid(); break;
    case nn::Kind::SoftMax: m = nn::SoftMax(); break;
    case nn::Kind::LogSoftMax: m = nn::LogSoftMax(); break;
    case nn::Kind::Dropout: {
      double p = args.empty() ? 0.5 : num(0);
      if (!(p >= 0 && p < 1))
        fail(loc, fmt::format("{} must be in [0, 1), got {}", argName(0), formatNumber(p)));
      m = nn::Dropout(p);
      break;
    }
    case nn::Kind::SpatialConvolution:
    case nn::Kind::SpatialConvolutionMM: {
      size_t n = args.size();
      int64_t nIn = size(0), nOut = size(1), kW = size(2), kH = size(3);
      int64_t dW = n > 4 ? size(4) : 1, dH = n > 5 ? size(5) : 1;
      int64_t padW = n > 6 ? padding(6) : 0, padH = n > 7 ? padding(7) : -1;
      m = *c.kind == nn::Kind::SpatialConvolution
              ? nn::SpatialConvolution(nIn, nOut, kW, kH, dW, dH, padW, padH)
              : nn::SpatialConvolutionMM(nIn, nOut, kW, kH, dW, dH, padW, padH);
      break;
    }
    case nn::Kind::SpatialMaxPooling: {
      size_t n = args.size();
      int64_t kW = size(0), kH = size(1);
      int64_t dW = n > 2 ? size(2) : -1, dH = n > 3 ? size(3) : -1;
      int64_t padW = n > 4 ? padding(4) : 0, padH = n > 5 ? padding(5) : 0;
      m = nn::SpatialMaxPooling(kW, kH, dW, dH, padW, padH);
      break;
    }
    }
    m.loc = loc;
    chargeModules(1, loc);
    return ModuleRef{&moduleArena_.emplace_back(std::move(m))};
  }

  // --- the result ---------------------------------------------------------

  const Binding *global(const char *name) const {
    auto it = vars_.find(name);
    if (it == vars_.end() || std::holds_alternative<Nil>(it->second.value))
      return nullptr;
    return &it->second;
  }

  nn::ModelSpec finish() {
    nn::ModelSpec spec;
    const Binding *model = global("model");
    if (!model)
      fail({1, 1}, "no 'model' defined; expected e.g. model = nn.Sequential()");
    auto *m = std::get_if<ModuleRef>(&model->value);
    if (!m || m->m->kind != nn::Kind::Sequential)
      fail(model->loc,
           fmt::format("'model' must be an nn.Sequential, got {}", describe(model->value)));
    static_cast<nn::Module &>(spec.model) = *m->m;
    spec.modelLoc = model->loc;

    if (const Binding *c = global("criterion")) {
      auto *crit = std::get_if<nn::Criterion>(&c->value);
      if (!crit)
        fail(c->loc, fmt::format("'criterion' must be a criterion such as "
                                 "nn.ClassNLLCriterion(), got {}",
                                 describe(c->value)));
      spec.criterion = *crit;
    }

    if (const Binding *o = global("optimizer")) {
      auto *ref = std::get_if<OptimRef>(&o->value);
      if (!ref)
        fail(o->loc, fmt::format("'optimizer' must be optim.sgd, optim.adagrad "
                                 "or optim.adam, got {}",
                                 describe(o->value)));
      spec.optimizer = optimizer(*ref);
    }

    if (const Binding *in = global("input"))
      spec.input = inputShape(*in);
    return spec;
  }

  nn::Optimizer optimizer(const OptimRef &ref) {
    const OptimizerInfo &info = optimizers()[ref.index];
    nn::Optimizer opt;
    opt.name = info.name;
    opt.loc = ref.loc;
    const char *configName = nullptr;
    const Binding *config = nullptr;
    for (const char *n : {"config", "optimState", "optimConfig"})
      if ((config = global(n))) {
        configName = n;
        break;
      }
    if (!config)
      return opt;
    auto *t = std::get_if<TableRef>(&config->value);
    if (!t)
      fail(config->loc, fmt::format("'{}' must be a table such as "
                                    "{{learningRate = 0.01}}, got {}",
                                    configName, describe(config->value)));
    if (!t->t->array.empty())
      fail(t->t->loc, fmt::format("'{}' must only have named entries such as "
                                  "{{learningRate = 0.01}}",
                                  configName));
    for (const auto &[key, field] : t->t->fields) {
      bool known = false;
      for (std::string_view k : info.keys)
        known = known || k == key;
      if (!known)
        fail(field.keyLoc, fmt::format("unknown {} key {} for optim.{} (allowed: {})", configName,
                                       quote(key), info.name, fmt::join(info.keys, ", ")));
      if (std::holds_alternative<Nil>(field.value))
        continue;
      if (auto *b = std::get_if<bool>(&field.value); b && key == "nesterov") {
        opt.config[key] = *b ? 1 : 0;
        continue;
      }
      auto *d = std::get_if<double>(&field.value);
      if (!d || !std::isfinite(*d))
        fail(field.keyLoc, fmt::format("{} key {} must be a finite number, "
                                       "got {}",
                                       configName, quote(key), describe(field.value)));
      opt.config[key] = *d;
    }
    return opt;
  }

  ir::Shape inputShape(const Binding &in) {
    auto *t = std::get_if<TableRef>(&in.value);
    auto bad = [&](const std::string &got) {
      fail(in.loc, fmt::format("'input' must be a list of 1 to 8 positive "
                               "integers such as {{1, 32, 32}}, got {}",
                               got));
    };
    if (!t)
      bad(describe(in.value));
    const Table &tab = *t->t;
    if (tab.array.empty() || tab.array.size() > 8 || !tab.fields.empty())
      bad(fmt::format("a table with {} list and {} named entries", tab.array.size(),
                      tab.fields.size()));
    ir::Shape shape;
    for (const Value &v : tab.array) {
      auto *d = std::get_if<double>(&v);
      if (!d || !(*d >= 1 && *d <= kMaxSize && *d == std::floor(*d)))
        bad(describe(v));
      shape.push_back(int64_t(*d));
    }
    return shape;
  }

  Lexer lex_;
  Token tok_;
  std::optional<Token> ahead_;
  std::unordered_map<std::string, Binding> vars_;
  std::deque<Table> tables_;
  std::deque<nn::Module> moduleArena_;
  size_t moduleCount_ = 0;
  std::unordered_set<const nn::Module *> added_; ///< modules :add()ed at least once
  size_t tableEntries_ = 0;
  size_t concatBytes_ = 0;
  int depth_ = 0;
};

} // namespace

Expected<nn::ModelSpec> parseModel(std::string_view text, const std::string &file) {
  try {
    nn::ModelSpec spec = Evaluator(text).run();
    spec.file = file;
    return spec;
  } catch (const Failure &f) {
    return Diag{file, f.loc.line, f.loc.col, f.message};
  }
}

Expected<nn::ModelSpec> loadModel(const std::string &path) {
  if (const char *e = std::getenv("GRAPHC_MODEL_EVALUATOR"); e && *e) {
    if (std::string_view(e) == "lua")
      return loadModelLua(path);
    if (std::string_view(e) != "subset")
      return Diag{path, 0, 0,
                  fmt::format("GRAPHC_MODEL_EVALUATOR={}: expected lua (the embedded Lua "
                              "5.1) or subset (the .model evaluator, the default)",
                              quote(e))};
  }
  auto text = readModelText(path);
  if (!text)
    return text.diag();
  return parseModel(*text, path);
}

} // namespace graphc::frontend
