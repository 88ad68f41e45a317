// ir/Error.h - user errors as values, internal errors as checks.
//
// User input (model files, flags, data, checkpoints) can be wrong; such errors
// travel as `Expected<T>` carrying a `Diag` up to the command line, which
// prints `file:line:col: error: message` and exits non-zero. Compiler bugs are
// different: GRAPHC_CHECK reports them as internal errors with file and line.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace graphc {

/// A located diagnostic. `line`/`col` are 1-based; 0 means "no location".
struct Diag {
  std::string file;
  int line = 0;
  int col = 0;
  std::string message; ///< names the offending text, quoted and shortened

  /// The one-line form `file:line:col: error: message`.
  std::string str() const;
};

/// `text` in single quotes, control bytes escaped, cut after `max` bytes.
std::string quote(std::string_view text, size_t max = 40);

/// Prints an internal-error report and aborts. Used by GRAPHC_CHECK.
[[noreturn]] void internalError(const char *file, int line, const std::string &msg);

#define GRAPHC_CHECK(cond, ...)                                                                    \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::graphc::internalError(__FILE__, __LINE__,                                                  \
                              "check `" #cond "` failed: " + ::fmt::format(__VA_ARGS__));          \
  } while (0)

/// Unlocated user error; the caller adds a location when it has one.
inline Diag error(std::string message) {
  Diag d;
  d.message = std::move(message);
  return d;
}

/// Either a value or a diagnostic.
template <class T> class [[nodiscard]] Expected {
public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Diag diag) : v_(std::move(diag)) {}

  explicit operator bool() const { return v_.index() == 0; }
  T &operator*() { return std::get<0>(v_); }
  const T &operator*() const { return std::get<0>(v_); }
  T *operator->() { return &std::get<0>(v_); }
  const T *operator->() const { return &std::get<0>(v_); }
  const Diag &diag() const { return std::get<1>(v_); }
  Diag &diag() { return std::get<1>(v_); }

private:
  std::variant<T, Diag> v_;
};

/// Success or a diagnostic, for operations without a result.
class [[nodiscard]] Status {
public:
  Status() = default;
  Status(Diag diag) : d_(std::move(diag)) {}
  explicit operator bool() const { return !d_; }
  const Diag &diag() const { return *d_; }

private:
  std::optional<Diag> d_;
};

} // namespace graphc
