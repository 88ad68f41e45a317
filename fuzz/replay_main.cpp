// fuzz/replay_main.cpp - without libFuzzer: runs every file named, or every
// file in every directory named, through the target's LLVMFuzzerTestOneInput
// once. The test suite replays the saved corpus and crashes this way.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
}

int main(int argc, char **argv) {
  namespace fs = std::filesystem;
  size_t n = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path arg(argv[i]);
    if (fs::is_directory(arg)) {
      for (const auto &e : fs::recursive_directory_iterator(arg))
        if (e.is_regular_file()) {
          replay(e.path());
          ++n;
        }
    } else if (fs::exists(arg)) {
      replay(arg);
      ++n;
    }
  }
  std::printf("replayed %zu inputs\n", n);
  return 0;
}
