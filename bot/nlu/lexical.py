"""Lexical intent features: TF-IDF over word 1–2-grams and character 2–5-grams.

Training uses scikit-learn's ``TfidfVectorizer``; what is saved is only JSON (vocabulary,
settings) and ``.npy`` (idf), and loading rebuilds an equivalent vectorizer from them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
_SMALL_BATCH = 8  # up to this many texts (a parse): the direct path

_SETTINGS: dict[str, dict[str, Any]] = {
    "word": {
        "analyzer": "word",
        "ngram_range": (1, 2),
        "min_df": 1,
        "token_pattern": r"(?u)\b\w+\b",
    },
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2},
}


def _make(kind: str, vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        lowercase=True,
        sublinear_tf=True,
        dtype=np.float32,
        vocabulary=vocabulary,
        **_SETTINGS[kind],
    )


class LexicalFeatures:
    """Word + char TF-IDF, each L2-normalised, concatenated (sparse CSR, float32)."""

    def __init__(self, vectorizers: dict[str, Any]) -> None:
        self._vectorizers = vectorizers
        self._plan: list[tuple[Any, dict[str, int], Any, int]] | None = None

    @classmethod
    def fit(cls, texts: Sequence[str]) -> LexicalFeatures:
        vectorizers = {}
        for kind in _SETTINGS:
            vec = _make(kind)
            try:
                vec.fit(texts)
            except ValueError:  # e.g. min_df pruned everything on a tiny set
                vec = _make(kind)
                vec.set_params(min_df=1)
                vec.fit(texts)
            vectorizers[kind] = vec
        return cls(vectorizers)

    def transform(self, texts: Sequence[str]) -> Any:
        """Word + char TF-IDF rows, sparse CSR (float32)."""
        if len(texts) > _SMALL_BATCH:
            from scipy.sparse import hstack  # type: ignore[import-untyped]

            parts = [vec.transform(texts) for vec in self._vectorizers.values()]
            scale = np.float32(1 / np.sqrt(len(parts)))
            return hstack(parts, format="csr", dtype=np.float32) * scale
        return self._transform_small(texts)

    def _transform_small(self, texts: Sequence[str]) -> Any:
        """The same values as the batch path, computed directly: scikit-learn's ``transform``
        costs ~1 ms per call for one message, most of a parse after the embedding."""
        from scipy.sparse import csr_matrix

        if self._plan is None:
            self._plan = self._build_plan()
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        scale = 1 / np.sqrt(len(self._plan))
        for r, text in enumerate(texts):
            for analyzer, vocab, idf, offset in self._plan:
                counts: dict[int, int] = {}
                for term in analyzer(text):
                    col = vocab.get(term)
                    if col is not None:
                        counts[col] = counts.get(col, 0) + 1
                if not counts:
                    continue
                idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                w = (np.log(tf) + 1.0) * idf[idx]
                w *= scale / np.linalg.norm(w)
                rows.extend([r] * len(idx))
                cols.extend((idx + offset).tolist())
                vals.extend(w.tolist())
        return csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(len(texts), self.n_features),
            dtype=np.float32,
        )

    def _build_plan(self) -> list[tuple[Any, dict[str, int], Any, int]]:
        plan, offset = [], 0
        for vec in self._vectorizers.values():
            vocab = {str(k): int(v) for k, v in vec.vocabulary_.items()}
            plan.append((vec.build_analyzer(), vocab, np.asarray(vec.idf_, np.float64), offset))
            offset += len(vocab)
        return plan

    @property
    def n_features(self) -> int:
        return sum(len(v.vocabulary_) for v in self._vectorizers.values())

    def to_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for kind, vec in self._vectorizers.items():
            vocab = {term: int(i) for term, i in vec.vocabulary_.items()}
            (path / f"{kind}_vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
            np.save(path / f"{kind}_idf.npy", vec.idf_.astype(np.float64))

    @classmethod
    def from_dir(cls, path: Path) -> LexicalFeatures:
        vectorizers = {}
        for kind in _SETTINGS:
            vocab = json.loads((path / f"{kind}_vocab.json").read_text())
            vec = _make(kind, vocabulary=vocab)
            vec.idf_ = np.load(path / f"{kind}_idf.npy")
            vec.vocabulary_ = vocab
            vectorizers[kind] = vec
        return cls(vectorizers)
