// runtime/Checkpoint.h - checkpoints as safetensors files that PyTorch loads.
//
// A safetensors file is an 8-byte little-endian header length, a JSON header
// `{"1.weight": {"dtype": "F32", "shape": [1000, 1024], "data_offsets": [b, e]},
// ..., "__metadata__": {...}}` and the raw little-endian tensor data. Tensor
// names are PyTorch's nn.Sequential state_dict names (DESIGN.md, "Checkpoints
// and interchange"), so `load_state_dict` takes the model tensors as they are.
// Optimizer state travels as extra tensors `optim.<slot>.<param>` and the step
// counter, epoch and seed as metadata, so a resumed run continues bit for bit.
// Writes are atomic (FILE.tmp.<pid>, fsync, rename); loading validates every
// byte against the model before touching the executable.
#pragma once

#include "ir/Error.h"
#include "ir/Type.h"
#include "runtime/Executable.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace graphc::runtime {

/// A tensor to write: `bytes` bytes of little-endian `dtype` data at `data`.
struct TensorRef {
  std::string name;
  std::string dtype = "F32";
  ir::Shape shape;
  const void *data = nullptr;
  size_t bytes = 0;
};

/// One tensor's header entry; offsets are relative to the data section.
struct TensorEntry {
  std::string dtype;
  ir::Shape shape;
  uint64_t begin = 0, end = 0;
};

/// A safetensors file read and validated: every entry lies inside `data`.
struct SafetensorsFile {
  std::string path;
  std::map<std::string, TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<uint8_t> data; ///< the data section

  const uint8_t *bytes(const TensorEntry &e) const { return data.data() + e.begin; }
};

/// Writes `size` bytes to `path` atomically: `path.tmp.<pid>`, fsync, rename.
/// On failure the old file, if any, is untouched and no temporary remains.
/// A symbolic link is followed: the link stays and its target is replaced
/// (the temporary beside the target). /dev/null, /dev/stdout, a terminal or
/// a FIFO is written through; a directory, a block device or a socket is
/// refused with an error, never replaced. SIGINT or SIGTERM during the write
/// removes the temporary before the process ends (unless the program handles
/// or ignores the signal itself), and temporaries `path.tmp.PID` that dead
/// processes left behind are removed first.
Status writeFileAtomic(const std::string &path, const void *data, size_t size);

/// A regular file open for reading, for the readers of checkpoints and .t7
/// files: its size, and reads of exactly n bytes; closed with the object.
/// Errors name the file.
class InputFile {
public:
  static Expected<InputFile> open(const std::string &path);
  InputFile(InputFile &&o) noexcept : path_(std::move(o.path_)), fd_(o.fd_), size_(o.size_) {
    o.fd_ = -1;
  }
  InputFile &operator=(InputFile &&) = delete;
  ~InputFile();
  uint64_t size() const { return size_; }
  /// The next n bytes, or an error ("the file shrank while it was read").
  Status read(void *dst, uint64_t n);

private:
  InputFile(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

/// The error writeFileAtomic(path, ...) would give for what `path` is (a
/// directory, a block device, a socket), without writing anything: the
/// command line checks its output paths before a long run.
Status checkWritable(const std::string &path);

/// Serialises tensors (in the given order, contiguous) and string metadata.
std::string encodeSafetensors(const std::vector<TensorRef> &tensors,
                              const std::map<std::string, std::string> &metadata);

/// Writes a safetensors file atomically.
Status writeSafetensors(const std::string &path, const std::vector<TensorRef> &tensors,
                        const std::map<std::string, std::string> &metadata);

/// Reads and validates a safetensors file by the format's rules: a bounded
/// JSON object header, unique names, known dtypes, and tensors that cover the
/// data section exactly (in offset order, no gap, no overlap, no trailing
/// bytes). Errors name the file and the tensor.
Expected<SafetensorsFile> readSafetensors(const std::string &path);

/// What a checkpoint says besides the tensors.
struct CheckpointInfo {
  int64_t epoch = 0; ///< epochs completed; 0 for a plain state_dict
  int64_t step = 0;  ///< optimizer updates done
  bool hasSeed = false;
  uint64_t seed = 1;
  bool hasOptimizerState = false;
  std::map<std::string, std::string> metadata; ///< everything, as stored
  std::vector<std::string> warnings;           ///< what was loaded anyway (non-finite values)
};

/// Saves the executable's parameters, optimizer state and step counter with
/// `graphc.*` metadata (model, optimizer, step, epoch, seed) plus `extra`.
Status saveCheckpoint(const std::string &path, Executable &exe, int64_t epoch, uint64_t seed,
                      const std::map<std::string, std::string> &extra = {});

/// Loads a checkpoint (a graphc one or a plain PyTorch state_dict) into the
/// executable. With `optimizerState`, the optimizer state and step counter
/// are restored (zero and 0 when the file has none); without, `optim.*`
/// tensors are ignored. A NaN or infinite value in a tensor that is loaded
/// is an error naming the tensor, or, with `allowNonfinite`, a warning in
/// the result. Nothing changes in `exe` unless everything checks out.
Expected<CheckpointInfo> loadCheckpoint(const std::string &path, Executable &exe,
                                        bool optimizerState = true, bool allowNonfinite = false);

} // namespace graphc::runtime
