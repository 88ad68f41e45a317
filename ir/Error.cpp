// ir/Error.cpp - formatting of diagnostics and internal errors.
#include "ir/Error.h"

#include <cstdio>
#include <cstdlib>

namespace graphc {

std::string quote(std::string_view text, size_t max) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    unsigned char c = text[i];
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += char(c);
  }
  if (text.size() > max)
    out += "...";
  return out + "'";
}

std::string Diag::str() const {
  std::string out;
  if (!file.empty()) {
    out += file;
    if (line > 0)
      out += fmt::format(":{}:{}", line, col > 0 ? col : 1);
    out += ": ";
  }
  out += "error: " + message;
  return out;
}

void internalError(const char *file, int line, const std::string &msg) {
  std::fflush(stdout);
  std::fprintf(stderr,
               "graphc: internal error at %s:%d: %s\n"
               "This is a bug in graphc, not in your input; please report it.\n",
               file, line, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

} // namespace graphc
