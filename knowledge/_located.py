"""YAML and JSON parsing that remembers line numbers.

Both parsers return plain Python data, except that mappings are :class:`LocatedDict` and
sequences :class:`LocatedList`: ordinary ``dict``/``list`` subclasses that also carry the
1-based line where they start and the line of each key / item. Validation code can then name
the exact line of a bad field.

YAML plain scalars are read as *strings* (only ``null``/``~``/empty become ``None``): every field
of a knowledge file is text, and this avoids YAML 1.1 surprises such as ``answer: No`` turning
into ``False`` or ``lang: no`` into a boolean.
"""

from __future__ import annotations

import bisect
import functools
import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


class LocatedDict(dict[Any, Any]):
    """A mapping with ``line`` (where it starts) and ``key_lines`` (line of each key)."""

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.duplicate_keys: list[tuple[str, int]] = []

    def line_of(self, key: str) -> int:
        """Line of ``key`` if present, else the mapping's own line."""
        return self.key_lines.get(key, self.line)


class LocatedList(list[Any]):
    """A sequence with ``line`` (where it starts) and ``item_lines`` (line of each item)."""

    def __init__(self, line: int = 1) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class LocatedSyntaxError(ValueError):
    """The text is not valid YAML/JSON; ``line`` is the parser's 1-based line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# --------------------------------------------------------------------------- YAML


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def _resolve(self: yaml.resolver.BaseResolver, kind: type[Node], value: Any, implicit: Any) -> str:
    """Tag resolution without YAML 1.1 implicit types: plain scalars are text, except null."""
    if kind is yaml.ScalarNode:
        plain = implicit is not None and implicit[0]
        return "tag:yaml.org,2002:null" if plain and value in _NULLS else "tag:yaml.org,2002:str"
    if kind is yaml.SequenceNode:
        return "tag:yaml.org,2002:seq"
    return "tag:yaml.org,2002:map"


class _StrLoader(yaml.SafeLoader):
    """SafeLoader whose plain scalars stay strings (except null)."""

    resolve = _resolve

    def scan_plain(self) -> yaml.tokens.ScalarToken:
        """PyYAML's plain-scalar scanner (MIT), but ``?`` may occur inside flow scalars.

        PyYAML rejects ``[Where is my order?, Hi]``; YAML 1.2 and most other parsers accept it,
        and FAQ/intent examples end in question marks all the time.
        """
        chunks: list[str] = []
        start_mark = self.get_mark()
        end_mark = start_mark
        indent = self.indent + 1
        spaces: list[str] = []
        blank = "\0 \t\r\n\x85\u2028\u2029"
        while True:
            length = 0
            if self.peek() == "#":
                break
            while True:
                ch = self.peek(length)
                if (
                    ch in blank
                    or (
                        ch == ":"
                        and self.peek(length + 1) in blank + (",[]{}" if self.flow_level else "")
                    )
                    or (self.flow_level and ch in ",[]{}")
                ):
                    break
                length += 1
            if length == 0:
                break
            self.allow_simple_key = False
            chunks.extend(spaces)
            chunks.append(self.prefix(length))
            self.forward(length)
            end_mark = self.get_mark()
            spaces = self.scan_plain_spaces(indent, start_mark) or []
            if not spaces or self.peek() == "#" or (not self.flow_level and self.column < indent):
                break
        return yaml.tokens.ScalarToken("".join(chunks), True, start_mark, end_mark)


def _construct_map(loader: _StrLoader, node: MappingNode) -> Iterator[LocatedDict]:
    data = LocatedDict(node.start_mark.line + 1)
    yield data
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool | None):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            )
        line = key_node.start_mark.line + 1
        if key in data:
            data.duplicate_keys.append((str(key), line))
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: _StrLoader, node: SequenceNode) -> Iterator[LocatedList]:
    data = LocatedList(node.start_mark.line + 1)
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


_StrLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_StrLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


if yaml.__with_libyaml__:  # PyYAML built with libyaml (the usual wheels)
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _CStrLoader(CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """The same loader on libyaml's C parser: about 4x faster on big files."""

        yaml_constructors = _StrLoader.yaml_constructors
        resolve = _resolve

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def _load_c(text: str) -> Any:
    """Fast path; raises yaml.YAMLError on anything libyaml rejects (e.g. ``[Hi?]``)."""
    loader = _CStrLoader(text)
    try:
        node: Node | None = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str) -> Any:
    """Parse one YAML document into located data; raise :class:`LocatedSyntaxError`."""
    if yaml.__with_libyaml__:  # the pure-Python fallback below always works
        try:
            return _load_c(text)
        except yaml.YAMLError:
            pass  # the Python scanner accepts a little more and gives the error message
    loader = _StrLoader(text)
    try:
        node: Node | None = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise LocatedSyntaxError(line, f"invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise LocatedSyntaxError(1, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- JSON

_Scan = Callable[[str, int], tuple[Any, int]]


@functools.lru_cache(maxsize=2)
def _newlines(text: str) -> list[int]:
    """Offsets of every newline (cached: str hashes are cached, so lookups are cheap)."""
    return [m.start() for m in re.finditer("\n", text)]


def _line_at(text: str, pos: int) -> int:
    return bisect.bisect_left(_newlines(text), pos) + 1


def _parse_object(
    s_and_end: tuple[str, int],
    strict: bool,
    scan_once: _Scan,
    object_hook: Any,
    object_pairs_hook: Any,
    memo: dict[str, str] | None = None,
) -> tuple[LocatedDict, int]:
    text, start = s_and_end
    positions: list[int] = []

    def recording_scan(s: str, idx: int) -> tuple[Any, int]:
        positions.append(idx)
        return scan_once(s, idx)

    pairs, end = json.decoder.JSONObject(  # type: ignore[attr-defined]
        s_and_end, strict, recording_scan, None, lambda p: p, memo
    )
    data = LocatedDict(_line_at(text, start - 1))
    for (key, value), pos in zip(pairs, positions, strict=False):
        line = _line_at(text, pos)
        if key in data:
            data.duplicate_keys.append((key, line))
        data[key] = value
        data.key_lines[key] = line
    return data, end


def _parse_array(s_and_end: tuple[str, int], scan_once: _Scan) -> tuple[LocatedList, int]:
    text, start = s_and_end
    positions: list[int] = []

    def recording_scan(s: str, idx: int) -> tuple[Any, int]:
        positions.append(idx)
        return scan_once(s, idx)

    values, end = json.decoder.JSONArray(s_and_end, recording_scan)  # type: ignore[attr-defined]
    data = LocatedList(_line_at(text, start - 1))
    data.extend(values)
    data.item_lines.extend(_line_at(text, p) for p in positions[: len(values)])
    return data, end


def _located_decoder() -> json.JSONDecoder:
    decoder = json.JSONDecoder()
    decoder.parse_object = _parse_object  # type: ignore[attr-defined]
    decoder.parse_array = _parse_array  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


def load_json(text: str) -> Any:
    """Parse JSON into located data; raise :class:`LocatedSyntaxError`."""
    try:
        return _located_decoder().decode(text)
    except json.JSONDecodeError as exc:
        raise LocatedSyntaxError(exc.lineno, f"invalid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise LocatedSyntaxError(1, "invalid JSON: nested too deeply") from exc
