#!/usr/bin/env python3
"""Opens every Megatron-LM indexed dataset (<prefix>.idx + <prefix>.bin) under a directory the
way Megatron-LM's IndexedDataset does (megatron/core/datasets/indexed_dataset.py: the index
and the data file are numpy memory maps, the index is parsed with numpy.frombuffer at fixed
offsets), checks what its reader asserts, and prints one JSON object per dataset:
sequences, documents, tokens and a checksum of the token ids (sum mod 2**32) so a caller can
compare with another reader. Written independently from the TypeScript writer; needs numpy.

Usage: read_megatron_dataset.py DIR
"""
import json
import os
import struct
import sys

import numpy

HEADER = b"MMIDIDX\x00\x00"
DTYPES = {1: numpy.uint8, 2: numpy.int8, 3: numpy.int16, 4: numpy.int32, 5: numpy.int64, 6: numpy.float64, 7: numpy.float32, 8: numpy.uint16}


def read(prefix):
    idx = numpy.memmap(prefix + ".idx", mode="r", order="C")
    buffer = memoryview(idx)
    if bytes(buffer[0:9]) != HEADER:
        raise ValueError(f"{prefix}.idx: bad header")
    (version,) = struct.unpack("<Q", bytes(buffer[9:17]))
    if version != 1:
        raise ValueError(f"{prefix}.idx: version {version}")
    (code,) = struct.unpack("<B", bytes(buffer[17:18]))
    dtype = DTYPES[code]
    (sequence_count,) = struct.unpack("<Q", bytes(buffer[18:26]))
    (document_count,) = struct.unpack("<Q", bytes(buffer[26:34]))
    offset = 34
    lengths = numpy.frombuffer(buffer, dtype=numpy.int32, count=sequence_count, offset=offset)
    offset += lengths.nbytes
    pointers = numpy.frombuffer(buffer, dtype=numpy.int64, count=sequence_count, offset=offset)
    offset += pointers.nbytes
    documents = numpy.frombuffer(buffer, dtype=numpy.int64, count=document_count, offset=offset)
    offset += documents.nbytes
    if offset != len(buffer):
        raise ValueError(f"{prefix}.idx: {len(buffer) - offset} trailing bytes (multimodal modes are not expected)")
    # What Megatron-LM's _IndexReader asserts.
    if lengths.shape[0] != documents[-1]:
        raise ValueError(f"{prefix}.idx: {lengths.shape[0]} sequences but document_indices[-1] = {documents[-1]}")
    itemsize = numpy.dtype(dtype).itemsize
    expected = numpy.concatenate([[0], numpy.cumsum(lengths.astype(numpy.int64) * itemsize)[:-1]]) if sequence_count else numpy.zeros(0, numpy.int64)
    if not numpy.array_equal(pointers, expected):
        raise ValueError(f"{prefix}.idx: sequence pointers are not the running byte offsets")
    if documents[0] != 0 or numpy.any(numpy.diff(documents) < 1):
        raise ValueError(f"{prefix}.idx: document indices must start at 0 and increase")
    data = numpy.memmap(prefix + ".bin", mode="r", order="C")  # fails on an empty file, as in Megatron-LM
    tokens = int(lengths.astype(numpy.int64).sum())
    if len(data) != tokens * itemsize:
        raise ValueError(f"{prefix}.bin: {len(data)} bytes, the index describes {tokens * itemsize}")
    ids = numpy.frombuffer(memoryview(data), dtype=dtype, count=tokens, offset=0)
    return {
        "prefix": os.path.basename(prefix),
        "dtype": numpy.dtype(dtype).name,
        "sequences": int(sequence_count),
        "documents": int(document_count) - 1,
        "tokens": tokens,
        "checksum": int(ids.astype(numpy.uint64).sum() % (1 << 32)),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    prefixes = sorted(os.path.join(d, f[:-4]) for d, _, files in os.walk(root) for f in files if f.endswith(".idx"))
    for prefix in prefixes:
        print(json.dumps(read(prefix)))


if __name__ == "__main__":
    main()
