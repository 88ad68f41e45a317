// runtime/Distributed.h - data-parallel training over MPI (DESIGN.md
// decision 12): every process holds the whole model, takes its contiguous
// share of each global batch, computes its gradient, and one MPI_Allreduce
// over the flat gradient buffer makes every process's gradient the global
// batch's mean before every process makes the same update.
//
// MPI appears in runtime/Distributed.cpp alone. A graphc built without MPI
// runs `--distributed` as one process (K = 1) and says so.
#pragma once

#include "runtime/Executable.h"

#include <cstdint>
#include <memory>
#include <string>

namespace graphc::runtime {

/// The processes of a run: MPI's world, or this process alone.
class Communicator {
public:
  /// Initialises MPI (under mpirun, or as a single process without it).
  static Expected<std::unique_ptr<Communicator>> init();
  /// Whether this graphc was built with MPI.
  static bool available();
  ~Communicator(); ///< MPI_Finalize

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// `bytes` bytes of process `root`'s `data` into every process's: one MPI_Bcast.
  Status broadcast(void *data, int64_t bytes, int root);
  /// Element-wise sum over all processes, in place: one MPI_Allreduce.
  Status allreduceSum(float *data, int64_t count);
  /// Whether `value` is the same on every process (one MPI_Allreduce of the
  /// value and its complement under MPI_MAX).
  Expected<bool> same(uint64_t value);
  /// Ends every process of the run with `code` (MPI_Abort): after an error
  /// on one process, so that the others do not wait for it forever.
  [[noreturn]] void abort(int code);

private:
  Communicator() = default;
  int rank_ = 0, size_ = 1;
};

/// The contiguous share of a batch of n samples that process `rank` of
/// `size` takes: as equal as possible, the first n % size shares one larger.
struct Share {
  int64_t begin = 0, count = 0;
};
Share shareOf(int64_t n, int rank, int size);

/// `local` (compiled with the step split in two, ExecutableOptions::split)
/// as an executable whose trainStep takes the whole global batch, trains on
/// this process's share, averages the gradients (weighted by each share's
/// size, so the result is the global batch's mean gradient, and the loss
/// and the count of correct predictions travel in the same buffer), then
/// updates. Where every process's `local` can allreduce on its device
/// (Executable::deviceAllreduce: the cuda target with NCCL), the gradient
/// stays there and only the loss and count travel by MPI; describe() says
/// which path runs. Outputs are written for this process's share only; the trainer
/// reads the global count from lastStepCorrect().
Expected<std::unique_ptr<Executable>> makeDistributed(std::unique_ptr<Executable> local,
                                                      Communicator &comm);

/// Where a data-parallel executable's steps spent their time since the
/// last call (then reset): "allreduce of 8.1 MB: 3.2 ms per step (12% of
/// the step)"; "" for any other executable.
std::string takeStepTimes(Executable &exe);

/// An error naming the epoch when the parameters, optimizer state or step
/// counter differ between the processes (compared by a 64-bit hash).
Status checkSameModel(Executable &exe, Communicator &comm, int64_t epoch);

} // namespace graphc::runtime
