"""`klartext ask`, `klartext eval answers` and bot.evaluate, on a runtime built from fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_fakes import FakeAction, FakeNLU, FakeRetriever
from typer.testing import CliRunner

import bot.cli.ask_cmds as ask_cmds
from bot.actions import ActionResult
from bot.cli._apps import app
from bot.config import Settings
from bot.engine import Engine
from bot.errors import ConfigError
from bot.evaluate import evaluate_answers, load_cases
from bot.runtime import Runtime

TABLE = {
    "delivery": [("en-ship-01", 0.8)],
    "shipping": [("en-ship-02", 0.8)],
    "lieferung": [("de-ship-01", 0.8)],
}
CASES = """
cases:
  - q: How long does delivery take?
    expect_sources: [en-ship-01, page-shipping#delivery-times]
  - q: Wie lange dauert die Lieferung?
    lang: de
    expect_sources: [de-ship-01]
  - q: What does shipping cost?
    expect_sources: [en-ship-01]
  - q: Tell me a joke
    expect: refuse
  - q: I want a human
    expect: handoff
  - q: where is my order NC-12345
    expect: action
  - q: How much is shipping to Mars
    expect: refuse
"""


def _runtime() -> Runtime:
    settings = Settings()
    nlu = FakeNLU({"human": "human_handoff", "order": "order_status"})
    retriever = FakeRetriever(TABLE)
    actions = {"lookup_order": FakeAction(ActionResult("ok", {"status": "shipped"}))}
    engine = Engine(nlu=nlu, retriever=retriever, settings=settings, actions=actions)
    return Runtime(
        settings=settings, retriever=retriever, nlu=nlu, engine=engine, actions=dict(actions)
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(ask_cmds, "_runtime", lambda settings, **kw: _runtime())
    return CliRunner()


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(CASES)
    return path


async def test_evaluate_scores_every_kind(cases_file: Path) -> None:
    report = await evaluate_answers(_runtime().engine, load_cases(cases_file))
    by_q = {r.q: r for r in report.results}
    assert by_q["How long does delivery take?"].correct
    wrong = by_q["What does shipping cost?"]  # cites en-ship-02: wrong source
    assert not wrong.correct and wrong.false_answer
    mars = by_q["How much is shipping to Mars"]  # answered although it should refuse
    assert mars.false_answer and not mars.correct
    assert by_q["I want a human"].correct and by_q["where is my order NC-12345"].correct
    assert report.summary == {
        "correct_source": pytest.approx(2 / 3, abs=1e-4),
        "correct_refusal": 0.5,
        "false_answer": pytest.approx(2 / 7, abs=1e-4),
        "n": 7,
    }
    # the wrongly answered question is not one click away either
    assert report.extra == {
        "correct_handoff": 1.0,
        "correct_action": 1.0,
        "reachable": pytest.approx(2 / 3, abs=1e-4),
        "reachable_first": pytest.approx(2 / 3, abs=1e-4),
    }


async def test_refusal_with_the_right_suggestion_is_reachable(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(
        "cases:\n"
        "  - q: parcel gone missing\n    expect_sources: [en-ship-01]\n"
        "  - q: parcel lost somewhere\n    expect_sources: [en-ret-01]\n"
    )
    rt = _runtime()
    rt.engine.retriever = FakeRetriever({"parcel": [("en-ship-01", 0.3), ("en-ship-02", 0.005)]})
    report = await evaluate_answers(rt.engine, load_cases(path))
    first, second = report.results
    assert not first.answered and first.suggested == ("en-ship-01",)  # 0.005 < the floor
    assert first.reachable and first.reachable_first and not first.correct
    assert not second.reachable  # refused, and en-ret-01 is not among the suggestions
    assert report.summary["correct_source"] == 0.0 and report.extra["reachable"] == 0.5


async def test_reachable_first_needs_the_right_entry_on_the_first_button(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text("cases:\n  - q: parcel gone missing\n    expect_sources: [en-ship-02]\n")
    rt = _runtime()
    hits = [("en-ship-01", 0.3), ("en-ship-02", 0.25)]
    rt.engine.retriever = FakeRetriever({"parcel": hits})
    (case,) = (await evaluate_answers(rt.engine, load_cases(path))).results
    assert case.suggested[:2] == ("en-ship-01", "en-ship-02")
    assert case.reachable and not case.reachable_first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: []", "non-empty"),
        ("cases:\n  - q: hi\n", "expect_sources"),
        ("cases:\n  - expect: refuse\n", "question"),
        ("cases:\n  - q: hi\n    expect_sources: hi\n", "list of ids"),
        ("[", "cannot read"),
    ],
)
def test_load_cases_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_cases(path)


def test_demo_answer_set_is_valid() -> None:
    cases = load_cases(Path(__file__).parents[1] / "data" / "answers_demo.yaml")
    assert len(cases) >= 60
    assert {c.expect for c in cases} == {"answer", "refuse", "handoff", "action"}


def test_ask_prints_events(cli: CliRunner) -> None:
    result = cli.invoke(app, ["ask", "How long does delivery take?"])
    assert result.exit_code == 0, result.output
    assert "Orders to Germany arrive" in result.output
    assert "[en-ship-01]" in result.output and "mode=extractive" in result.output


def test_ask_json_one_event_per_line(cli: CliRunner) -> None:
    result = cli.invoke(app, ["ask", "Wie lange dauert die Lieferung?", "--lang", "de", "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.strip().splitlines()]
    assert events[0]["type"] == "token" and events[-1]["type"] == "done"
    assert events[-1]["lang"] == "de"
    assert any(e["type"] == "sources" and e["items"][0]["id"] == "de-ship-01" for e in events)


def test_ask_reports_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings, **kw: object) -> Runtime:
        raise ConfigError("bad setting")

    monkeypatch.setattr(ask_cmds, "_runtime", broken)
    result = CliRunner().invoke(app, ["ask", "hi"])
    assert result.exit_code == 2 and "KT100" in result.output


def test_eval_answers_json_last_line(cli: CliRunner, cases_file: Path) -> None:
    result = cli.invoke(app, ["eval", "answers", str(cases_file), "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary) == {"correct_source", "correct_refusal", "false_answer", "n"}
    assert summary["n"] == 7 and len(lines) == 8


def test_eval_answers_table(cli: CliRunner, cases_file: Path) -> None:
    result = cli.invoke(app, ["eval", "answers", str(cases_file)])
    assert result.exit_code == 0, result.output
    assert "correct_source=66.7%" in result.output and "FALSE" in result.output
