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
        from scipy.sparse import hstack  # type: ignore[import-untyped]

        parts = [vec.transform(texts) for vec in self._vectorizers.values()]
        return hstack(parts, format="csr", dtype=np.float32) * np.float32(1 / np.sqrt(len(parts)))

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
