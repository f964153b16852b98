"""Line-tracking YAML/JSON parsing underneath the loaders."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge._located import (
    LocatedDict,
    LocatedList,
    LocatedSyntaxError,
    _load_c,
    _StrLoader,
    load_json,
    load_yaml,
)

DOC = """\
lang: de
entries:
  - id: a
    question: Wo ist mein Paket?
    alt_questions:
      - Sendungsverfolgung
      - Paket weg
    answer: No
  - {question: "x", answer: y, tags: [1, on]}
"""


def _lines(data: Any) -> Any:
    """Structure of values and line maps, for comparing two parses."""
    if isinstance(data, LocatedDict):
        return (data.line, data.key_lines, {k: _lines(v) for k, v in data.items()})
    if isinstance(data, LocatedList):
        return (data.line, data.item_lines, [_lines(v) for v in data])
    return data


def _python_load(text: str) -> Any:
    loader = _StrLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def test_yaml_values_and_lines() -> None:
    data = load_yaml(DOC)
    assert data["entries"].item_lines == [3, 9]
    first = data["entries"][0]
    assert first.line == 3
    assert first.key_lines == {"id": 3, "question": 4, "alt_questions": 5, "answer": 8}
    assert first["alt_questions"].item_lines == [6, 7]
    assert first["answer"] == "No"
    assert data["entries"][1]["tags"] == ["1", "on"]


def test_c_and_python_yaml_paths_agree() -> None:
    assert _lines(_load_c(DOC)) == _lines(_python_load(DOC))


def test_question_marks_in_flow_lists() -> None:
    assert load_yaml("en: [Where is my order?, Hi]\n") == {"en": ["Where is my order?", "Hi"]}


def test_json_values_and_lines() -> None:
    data = load_json('{\n  "a": [\n    1,\n    {"b": "c"}\n  ],\n  "d": null\n}')
    assert (data.line, data.key_lines) == (1, {"a": 2, "d": 6})
    assert data["a"].item_lines == [3, 4]
    assert data["a"][1].line == 4
    dup = load_json('{"k": 1,\n "k": 2}')
    assert dup == {"k": 2} and dup.duplicate_keys == [("k", 2)]


@pytest.mark.parametrize(
    ("loader", "text", "line"),
    [
        (load_yaml, "a: 1\nb: [1, 2\nc: 3\n", 3),
        (load_yaml, "a:\n  - x\n - y\n", 3),
        (load_json, '{\n"a": 1\n"b": 2}', 3),
        (load_json, "[1,\n2,\n]", 3),
    ],
)
def test_syntax_error_lines(loader: Any, text: str, line: int) -> None:
    with pytest.raises(LocatedSyntaxError) as err:
        loader(text)
    assert err.value.line == line
