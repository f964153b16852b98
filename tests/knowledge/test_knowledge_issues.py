"""Strict and lenient loading: every problem named by file, real line, field and code."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import KnowledgeError
from knowledge.loaders import load_file, load_knowledge
from knowledge.schema import KnowledgeIssue

BAD_YAML = """\
lang: en
entries:
  - id: ok-1
    question: Where is my order?
    answer: Check the tracking link in your email.
  - id: bad-1
    question: ""
    answer: Something.
  - id: bad-2
    question: Do you ship abroad?
    alt_questions: ship abroad
    answer: Yes.
  - id: bad-3
    question: Is there a discount?
    alt_questions:
      - students
      - {nested: map}
      - ""
    answer: Sometimes.
    lang: EN
  - id: bad-4
    question: Who are you?
    url: [not, a, string]
    anwser: typo
  - just a string
  - id: has space
    question: Q?
    answer: A.
"""

BAD_JSON = """\
{
  "entries": [
    {"id": "j-ok", "question": "Fine?", "answer": "Fine."},
    {
      "id": "j-bad",
      "question": "Typed?",
      "answer": 42
    },
    {"question": "No answer?"}
  ]
}
"""

BAD_CSV = """\
id,question,answer,lang
c-ok,Good row?,Yes.,en
c-missing,,An answer without question,en
c-multi,"Multi
line?","Answer
over lines",english
c-long,Q,A,en,extra
"""

BAD_PAGE = """\
---
title: [oops
---
# Page
text
"""


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _triples(issues: list[KnowledgeIssue]) -> list[tuple[str, int, str, str]]:
    return [(i.source, i.line, i.field, i.code) for i in issues]


def test_strict_load_raises_once_with_every_problem(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "faq.yaml": BAD_YAML,
            "faq2.json": BAD_JSON,
            "faq3.csv": BAD_CSV,
            "pages/bad.md": BAD_PAGE,
        },
    )
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(tmp_path)
    got = _triples(err.value.issues)
    assert got == [
        ("faq.yaml", 7, "question", "KB004"),
        ("faq.yaml", 11, "alt_questions", "KB005"),
        ("faq.yaml", 17, "alt_questions[1]", "KB005"),
        ("faq.yaml", 18, "alt_questions[2]", "KB005"),
        ("faq.yaml", 20, "lang", "KB006"),
        ("faq.yaml", 21, "answer", "KB004"),
        ("faq.yaml", 23, "url", "KB005"),
        ("faq.yaml", 24, "anwser", "KB007"),
        ("faq.yaml", 25, "entry", "KB003"),
        ("faq.yaml", 26, "id", "KB011"),
        ("faq2.json", 7, "answer", "KB005"),
        ("faq2.json", 9, "answer", "KB004"),
        ("faq3.csv", 3, "question", "KB004"),
        ("faq3.csv", 4, "lang", "KB006"),
        ("faq3.csv", 7, "row", "KB002"),
        ("pages/bad.md", 2, "front matter", "KB001"),
    ]
    text = str(err.value)
    assert "faq.yaml:24: [KB007] field 'anwser'" in text
    assert "16 problem(s) in 4 file(s)" in text


def test_lenient_load_keeps_good_entries_and_reports_bad(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(
        tmp_path,
        {
            "faq.yaml": BAD_YAML,
            "faq2.json": BAD_JSON,
            "faq3.csv": BAD_CSV,
            "broken.yaml": "entries:\n  - question: a\n    answer: b: c\n",
            "good.md": "# Good page\nStill loads.\n",
        },
    )
    kb = load_knowledge(tmp_path, skip_invalid=True)
    assert sorted(e.id for e in kb.entries) == ["c-ok", "good#good-page", "j-ok", "ok-1"]
    assert len(kb.issues) == 16
    assert {i.source for i in kb.issues} == {"broken.yaml", "faq.yaml", "faq2.json", "faq3.csv"}
    assert ("broken.yaml", 3, "file", "KB001") in _triples(kb.issues)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 16 and any("broken.yaml:3" in w for w in warned)  # never silent


@pytest.mark.parametrize(
    ("name", "text", "line", "needle"),
    [
        ("a.yaml", "entries:\n  - question: a\n    answer: b: c\n", 3, "invalid YAML"),
        ("b.json", '{"entries": [\n  {"question": "a",\n   "answer": "b",}\n]}', 3, "invalid JSON"),
        ("c.json", '{"entries": []}\n{"x": 1}', 2, "Extra data"),
        ("d.yaml", "entries: []\n---\nentries: []\n", 2, "invalid YAML"),
        ("e.csv", 'id,question,answer\nx,"unterminated,a\n', 2, "invalid CSV"),
        ("f.csv", 'id,question,answer\nx,q,a\ny,"a"b,c\n', 3, "invalid CSV"),
    ],
)
def test_syntax_errors_carry_the_parser_line(
    tmp_path: Path, name: str, text: str, line: int, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    entries, issues = load_file(path, tmp_path)
    assert all(e.line < line for e in entries)  # rows before the error still load
    (issue,) = [i for i in issues if i.code == "KB001"]
    assert (issue.source, issue.line) == (name, line)
    assert needle in issue.message


def test_structure_problems(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "empty.yaml": "",
            "noentries.yaml": "lang: en\nquestions: []\n",
            "badlang.yaml": "lang: german\nentries: []\n",
            "scalar.json": '"just text"',
            "nohdr.csv": "question,answer\nQ,A\n",
            "dupkey.yaml": "entries:\n  - question: a\n    answer: b\n    answer: c\n",
            "twice.yaml": "entries: []\nentries:\n  - {question: a, answer: b}\n",
        },
    )
    kb = load_knowledge(tmp_path, skip_invalid=True)
    assert [e.source for e in kb.entries] == ["twice.yaml"]  # file-level issue, entries fine
    assert _triples(kb.issues) == [
        ("badlang.yaml", 1, "lang", "KB006"),
        ("dupkey.yaml", 4, "answer", "KB007"),
        ("empty.yaml", 1, "entries", "KB002"),
        ("noentries.yaml", 1, "entries", "KB002"),
        ("noentries.yaml", 2, "questions", "KB007"),
        ("nohdr.csv", 1, "header", "KB002"),
        ("scalar.json", 1, "entries", "KB002"),
        ("twice.yaml", 2, "entries", "KB007"),
    ]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "latin.yaml").write_bytes("entries:\n  - question: Größe?\n".encode("latin-1"))
    _, issues = load_file(tmp_path / "latin.yaml", tmp_path)
    assert _triples(issues) == [("latin.yaml", 2, "file", "KB001")]
    assert "UTF-8" in issues[0].message


def test_duplicate_ids_across_files_name_both_locations(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "a.yaml": "entries:\n  - id: same\n    question: A?\n    answer: A.\n",
            "b/c.csv": "id,question,answer\nx,X?,X.\nsame,B?,B.\n",
        },
    )
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(tmp_path)
    (issue,) = err.value.issues
    assert (issue.source, issue.line, issue.field, issue.code) == ("b/c.csv", 3, "id", "KB008")
    assert "a.yaml:2" in issue.message
    kb = load_knowledge(tmp_path, skip_invalid=True)
    assert kb.by_id()["same"].source == "a.yaml"
    assert len(kb.entries) == 2


def test_same_question_without_ids_in_one_file_is_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(
        "entries:\n  - {question: Hi, answer: a}\n  - {question: hi , answer: b}\n",
        encoding="utf-8",
    )
    entries, issues = load_file(path, tmp_path)
    assert len(entries) == 1
    assert _triples(issues) == [("faq.yaml", 3, "id", "KB008")]


def test_page_problems(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "empty.md": "---\ntitle: Nothing\n---\n# Nothing\n\n## Still nothing\n",
            "unclosed.md": "---\ntitle: x\n# Body\ntext\n",
            "fm.md": "---\ntitle: T\nlang: deutsch\ncolour: red\n---\n# T\ntext\n",
            "list.md": "---\n- a\n---\ntext\n",
        },
    )
    kb = load_knowledge(tmp_path, skip_invalid=True)
    assert kb.entries == []
    assert _triples(kb.issues) == [
        ("empty.md", 1, "page", "KB009"),
        ("fm.md", 3, "lang", "KB006"),
        ("fm.md", 4, "colour", "KB007"),
        ("list.md", 2, "front matter", "KB002"),
        ("unclosed.md", 1, "front matter", "KB001"),
    ]


def test_load_file_rejects_unsupported_type(tmp_path: Path) -> None:
    (tmp_path / "faq.xlsx").write_bytes(b"PK\x03\x04")
    entries, issues = load_file(tmp_path / "faq.xlsx", tmp_path)
    assert entries == []
    assert _triples(issues) == [("faq.xlsx", 1, "file", "KB010")]


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="knowledge folder not found"):
        load_knowledge(tmp_path / "nope", skip_invalid=True)
