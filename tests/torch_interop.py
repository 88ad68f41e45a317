"""tests/torch_interop.py - what the PyTorch comparison tests share: running
graphc, failing with a message, and safetensors files read and written by
hand (struct + json + numpy, no safetensors package), independent of
graphc's own reader and writer."""
import json
import struct
import subprocess
import sys

import numpy as np


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def run(cmd, check=False):
    """Runs cmd, prints it and its output; with check, a non-zero exit fails."""
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(p.stdout, flush=True)
    if check and p.returncode != 0:
        fail(f"exit code {p.returncode}")
    return p


def read_safetensors(path):
    """The header, the metadata and every tensor as a numpy array: F32, and I64
    (BatchNorm's num_batches_tracked)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        kinds = {"F32": "<f4", "I64": "<i8"}
        if e["dtype"] not in kinds:
            fail(f"{name}: dtype {e['dtype']}")
        b, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data[b:end], dtype=kinds[e["dtype"]]).reshape(
            e["shape"]).copy()
    return header, meta, tensors


def write_safetensors(path, tensors):
    """A plain state_dict file, as safetensors.torch.save_file writes it: F32,
    and I64 for integer tensors (BatchNorm's num_batches_tracked)."""
    import torch
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype == torch.int64:
            dtype, raw = "I64", t.numpy().astype("<i8").tobytes()
        else:
            dtype, raw = "F32", t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
