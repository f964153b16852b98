"""The widget stays small and self-contained: <= 35 KB gzipped, no external URLs, no innerHTML."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

WIDGET = Path(__file__).resolve().parents[2] / "web" / "widget"
BUDGET_BYTES = 35 * 1024


def _shipped() -> list[Path]:
    return [p for p in (WIDGET / "widget.js", WIDGET / "widget.css") if p.exists()]


def test_widget_fits_the_gzip_budget() -> None:
    total = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in _shipped())
    assert 0 < total <= BUDGET_BYTES, f"{total} bytes gzipped"


def test_widget_loads_nothing_from_elsewhere_and_never_uses_inner_html() -> None:
    source = (WIDGET / "widget.js").read_text()
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    assert not re.search(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write)\b", code)
    assert not re.search(r"\beval\(|new Function\(", code)
    urls = set(re.findall(r"https?://[^\s\"'`)]+", code))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
