// runtime/T7Print.h - a .t7 object tree as text, for `graphc inspect`.
//
// Like `th -e "print(torch.load(f))"`: one line per value with its type,
// tensor shapes (and strides or offsets when the view is not plain), the
// first few elements, and the path of keys by indentation. An object met
// again (a shared module, a cycle) is printed once and then named by the
// path where it was shown, so the output stays as small as the file.
#pragma once

#include "runtime/T7.h"

#include <string>

namespace graphc::runtime {

struct T7PrintOptions {
  int values = 6; ///< elements shown per tensor or storage (0: none)
};

/// The tree under `file.root`, one value per line, ending in a newline.
std::string printT7(const T7File &file, const T7PrintOptions &options = {});

} // namespace graphc::runtime
