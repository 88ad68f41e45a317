// examples/embed/cpp/main.cpp - trains graphc's compiled seed MLP from C++.
//
// Build with the CMakeLists.txt beside this file; it runs graphc to write
// the library and links it with nothing else than libc, libm and pthreads.
//
//   ./train [steps]    trains on a synthetic 10-class set, prints the loss falling
#include "mlp.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

/// The compiled model as a C++ object.
class Mlp {
public:
  Mlp() {
    if (mlp_create(&ctx_, nullptr, 0) != MLP_OK)
      throw std::runtime_error(mlp_error(nullptr));
  }
  ~Mlp() { mlp_destroy(ctx_); }
  Mlp(const Mlp &) = delete;
  Mlp &operator=(const Mlp &) = delete;

  float step(const std::vector<float> &x, const std::vector<int32_t> &labels) {
    float loss = 0;
    if (mlp_train_step(ctx_, x.data(), labels.data(), int64_t(labels.size()), &loss) != MLP_OK)
      throw std::runtime_error(mlp_error(ctx_));
    return loss;
  }

private:
  mlp_ctx *ctx_ = nullptr;
};

} // namespace

int main(int argc, char **argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 300, batch = 64, classes = 10;
  const int64_t d = mlp_sample_size();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pixel(0, 255), noise(-200, 200);
  std::uniform_int_distribution<int32_t> label(0, classes - 1);
  std::vector<float> prototypes(size_t(classes * d));
  for (float &p : prototypes)
    p = pixel(rng);
  try {
    Mlp model;
    std::vector<float> x(size_t(batch * d));
    std::vector<int32_t> labels(batch);
    double first = 0, last = 0, sum = 0;
    int window = 0;
    for (int s = 1; s <= steps; ++s) {
      for (int b = 0; b < batch; ++b) {
        labels[size_t(b)] = label(rng);
        for (int64_t i = 0; i < d; ++i)
          x[size_t(b * d + i)] = prototypes[size_t(labels[size_t(b)] * d + i)] + noise(rng);
      }
      sum += model.step(x, labels);
      ++window;
      if (s % 25 == 0 || s == steps) {
        double mean = sum / window;
        std::printf("step %4d  loss %.4f\n", s, mean);
        if (first == 0)
          first = mean;
        last = mean;
        sum = 0;
        window = 0;
      }
    }
    std::printf("loss fell from %.4f to %.4f\n", first, last);
    return last < first ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
