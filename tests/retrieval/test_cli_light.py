"""`klartext kb stats` and a no-change `klartext reindex` stay light: no FAISS, torch,
sentence-transformers or SciPy import (checked in a fresh interpreter, with the real
configured embedder, whose model must not load)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakes import FakeEmbedder

from retrieval.reindex import reindex

FAQ = """\
entries:
  - id: ship
    question: How long does delivery take?
    answer: Orders arrive in 1-3 working days.
"""

SCRIPT = """
import json, sys
import bot.cli.index_cmds as cmds
from bot.cli._apps import app
from typer.main import get_command

command = get_command(app)
for args in (["kb", "stats"], ["reindex", sys.argv[1]]):
    command.main(args, standalone_mode=False)
heavy = ["faiss", "torch", "sentence_transformers", "scipy", "bm25s", "spacy"]
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def test_stats_and_no_change_reindex_import_nothing_heavy(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "faq.yaml").write_text(FAQ)
    import bot.cli.index_cmds as cmds
    from bot.config import Settings
    from knowledge.loaders import load_knowledge

    env = {**os.environ, "KLARTEXT_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    kb = load_knowledge(root)
    real = cmds.make_embedder(Settings(), kb.languages)  # lazy: loads no model
    fake = FakeEmbedder(dim=real.dim, name=real.name)  # the configured name, without the model
    reindex(kb, tmp_path / "var" / "index", fake, hnsw_threshold=100)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert real.name in proc.stdout  # kb stats ran
    assert "nothing written" in proc.stdout  # the reindex found nothing to do
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
