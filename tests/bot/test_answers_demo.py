"""The demo shop's answer-quality set, run through the real engine in extractive mode (the
embedded default): real knowledge, real index, real NLU, the same `klartext` commands a user
runs, plain and adapted to the knowledge base (`make run`'s configuration). Floors guard against
regressions; the goals and current figures are in
docs/benchmarks.md (*Engine and answers*)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot import texts

ROOT = Path(__file__).resolve().parents[2]
KLARTEXT = Path(sys.executable).parent / "klartext"


def _run(args: list[str], data_dir: Path, **settings: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLARTEXT_")}  # hermetic
    env |= settings
    env |= {
        "KLARTEXT_DATA_DIR": str(data_dir),
        "KLARTEXT_LLM_PROVIDER": "none",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(KLARTEXT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _eval(cases: str, data_dir: Path, **settings: str) -> dict[str, Any]:
    out = _run(["eval", "answers", cases, "--json"], data_dir, **settings)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _ask(q: str, data_dir: Path) -> list[dict[str, Any]]:
    out = _run(["ask", q, "--json"], data_dir)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _reply(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "token")


def test_demo_answer_set_in_extractive_mode(tmp_path: Path) -> None:
    out = _run(["reindex", "knowledge/demo"], tmp_path)
    assert "NLU retrained." in out  # reindex trains the NLU from intents.yaml
    last = _run(["eval", "answers", "tests/data/answers_demo.yaml", "--json"], tmp_path)
    result = json.loads(last.strip().splitlines()[-1])
    assert result["n"] >= 90
    # Knowing when not to answer: every unanswerable/injection case is refused.
    assert result["correct_refusal"] >= 0.95, result
    # Floors under the measured 0.629 / 0.033 (session 8; session 7 0.613 / 0.033, 0.581 /
    # 0.022 before answers from English-only content for German questions); goals 0.95 / 0.02.
    assert result["correct_source"] >= 0.58, result
    assert result["false_answer"] <= 0.04, result

    # Scope: a shop message that mixes intents (order status or complaint?) is still a
    # knowledge question — refused or answered, never told it is off topic; an off-topic one is.
    off_topic = texts.text("out_of_scope", "en")
    for q in (
        "the tracking app says delivered, but my doormat is empty",
        "Paket laut DHL zugestellt, aber nirgends zu finden",
    ):
        events = _ask(q, tmp_path)
        assert _reply(events) != texts.text("out_of_scope", events[-1]["lang"]), events
        assert events[-1]["mode"] in ("extractive", "fallback"), events
    assert _reply(_ask("who painted the mona lisa?", tmp_path)) == off_topic

    # Follow-up questions (two-turn conversations, tests/data/followups_demo.yaml): searched
    # with the previous question, they are answered right far more often than alone.
    fu = _eval("tests/data/followups_demo.yaml", tmp_path)
    off = _eval("tests/data/followups_demo.yaml", tmp_path, KLARTEXT_FOLLOWUP_CONTEXT="false")
    assert fu["n"] >= 60 and set(fu["kinds"]) == {"followup", "switch", "unanswerable"}, fu
    on_fu, off_fu = fu["kinds"]["followup"], off["kinds"]["followup"]
    assert on_fu["correct_source"] >= off_fu["correct_source"] + 0.15, (fu, off)
    assert on_fu["false_answer"] < off_fu["false_answer"], (fu, off)
    # floors under the measured 0.604 / 0.167 (session 8; without the context 0.479 / 0.183)
    assert fu["correct_source"] >= 0.55 and fu["false_answer"] <= 0.2, fu

    # `make run`'s configuration: e5 adapted to the demo's own FAQ phrasings (same NLU).
    out = _run(["reindex", "knowledge/demo", "--adapt"], tmp_path)
    assert "Adapted e5 to the knowledge base" in out and "e5kb:" in out
    last = _run(["eval", "answers", "tests/data/answers_demo.yaml", "--json"], tmp_path)
    adapted = json.loads(last.strip().splitlines()[-1])
    assert adapted["correct_refusal"] >= 0.95, adapted
    # Floors under the measured 0.726 / 0.011 (session 8; 0.710 in session 7, 0.645 in
    # session 6); the false-answer goal holds.
    assert adapted["correct_source"] >= max(0.68, result["correct_source"]), adapted
    assert adapted["false_answer"] <= 0.02, adapted
    fu = _eval("tests/data/followups_demo.yaml", tmp_path)
    # floors under the measured 0.667 / 0.167 (session 8; without the context 0.500 / 0.183)
    assert fu["correct_source"] >= 0.6 and fu["false_answer"] <= 0.2, fu
