"""Fixtures for the NLU tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from nlu_fakes import TOY_INTENTS, FakeEmbedder


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def knowledge_dir(tmp_path: Path) -> Path:
    import yaml

    root = tmp_path / "kb"
    root.mkdir()
    (root / "intents.yaml").write_text(
        yaml.safe_dump(
            {
                "intents": TOY_INTENTS,
                "out_of_scope": {
                    "en": ["what is the weather", "tell me a joke", "who won the football game"],
                    "de": ["wie wird das wetter", "erzähl einen witz"],
                },
            },
            allow_unicode=True,
        )
    )
    (root / "catalog.yaml").write_text(
        yaml.safe_dump(
            {
                "products": [
                    {"name": "Fjell 2 Tent", "sku": "NC-TENT-2", "aliases": ["fjell tent"]},
                    {"name": "Trail Runner 3", "sku": "NC-SHOE-3", "aliases": ["trail runners"]},
                ]
            }
        )
    )
    return root
