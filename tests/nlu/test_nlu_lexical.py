"""TF-IDF features: the direct small-batch path equals scikit-learn's batch path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nlu_fakes import toy_examples

from bot.nlu.lexical import LexicalFeatures


def test_small_path_equals_batch_path(tmp_path: Path) -> None:
    train = [t for t, _, _ in toy_examples()]
    lex = LexicalFeatures.fit(train)
    lex.to_dir(tmp_path / "lex")
    loaded = LexicalFeatures.from_dir(tmp_path / "lex")
    texts = ["where is my order now?", "Wo bleibt meine Bestellung", "", "!!!", "zzzz qqqq"] * 2
    batch = loaded.transform(texts)  # 10 texts: scikit-learn
    assert batch.shape == (len(texts), lex.n_features)
    for i, text in enumerate(texts):
        row = loaded.transform([text])  # one text: the direct path
        assert np.abs((row - batch[i]).toarray()).max() < 1e-6
    norms = np.sqrt(np.asarray(batch.multiply(batch).sum(axis=1))).ravel()
    assert np.allclose(norms[:2], 1.0, atol=1e-5)  # two L2-normalised parts, scaled by 1/sqrt(2)
    assert norms[2] == 0.0
