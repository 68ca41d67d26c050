"""Reading a mapping file into plain data, safely: bytes → UTF-8 text → YAML within limits.

A mapping is configuration written by hand, so whatever is wrong with the file itself is reported
as one mapping problem with its line, never as a parser's exception:

- text that is not UTF-8 (the line and column of the first bad byte);
- YAML that does not parse, or holds a value its types refuse (``2025-13-45``);
- nesting deeper than ``MAX_DEPTH``, aliases that refer to themselves, and aliases that expand
  the document past ``MAX_ALIAS_VALUES`` values (a "billion laughs" bomb): the YAML node graph is
  measured before any Python value is built, so a bomb is refused in milliseconds;
- a file larger than ``MAX_BYTES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from importer.errors import MappingError

MAX_BYTES = 8 << 20
MAX_DEPTH = 64
MAX_ALIAS_VALUES = 100_000


class _ValueMarks:
    """A value YAML's own types refuse (the date 2025-13-45) is reported with its line."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, OverflowError, TypeError, AttributeError) as exc:  # e.g. !!timestamp 'x'
            problem = f"a value cannot be read as {node.tag.rsplit(':', 1)[-1]}: {exc}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


class _PureLoader(_ValueMarks, yaml.SafeLoader):
    """PyYAML's own loader, refusing deep nesting before its recursive composer exhausts the stack."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# libyaml parses six times faster (and refuses nesting past 1000 levels by itself); where PyYAML
# was built without it, the pure loader does the work. Syntax errors are always worded by the pure
# loader, so a message does not depend on how PyYAML was built.
_FastLoader: Any = type("_FastLoader", (_ValueMarks, yaml.CSafeLoader), {}) if yaml.__with_libyaml__ else _PureLoader


def read_document(path: str | Path, *, hint: str | None = None) -> Any:
    """The parsed YAML document of a mapping file; ``MappingError`` for anything unreadable.

    ``hint`` goes with the error of a file that cannot be opened.
    """
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise MappingError(source, [f"cannot read the file ({exc.strerror or exc})"], hint=hint) from None
    if len(data) > MAX_BYTES:
        raise MappingError(
            source,
            [f"the file is larger than {MAX_BYTES >> 20} MB; a mapping this large is not a hand-written mapping"],
            hint="check that -m names the mapping, not an input file; long value lists belong in a lookup file",
        )
    return parse_document(data, source)


def parse_document(data: bytes, source: str = "<mapping>") -> Any:
    """Parse the bytes of a mapping file (see the module's docstring for what is refused)."""
    text = _decode(data, source)
    try:
        return _load(_FastLoader, text, source)
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc, text)
        if _FastLoader is not _PureLoader and "nested deeper" not in problem:
            try:
                _load(_PureLoader, text, source)
            except yaml.YAMLError as pure_exc:
                problem = _yaml_problem(pure_exc, text)
        raise MappingError(source, [problem]) from None
    except RecursionError:
        raise MappingError(source, [f"not valid YAML (nested deeper than {MAX_DEPTH} levels)"]) from None


def _load(loader_class: Any, text: str, source: str) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        before = data[:start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise MappingError(
            source,
            [f"line {line}, column {column}: the file is not UTF-8 text (byte 0x{data[start]:02x})"],
            hint="save the mapping as UTF-8 (most editors: 'Save with encoding')",
        ) from None


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow, such as NUL
        before = text[: exc.position]
        where = f"line {before.count(chr(10)) + 1}, column {len(before) - before.rfind(chr(10))}: "
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return f"{where}not valid YAML (the character {char} is not allowed)"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if "maximum nesting depth" in problem:  # libyaml's own limit
        problem = f"nested deeper than {MAX_DEPTH} levels"
    return f"{where}not valid YAML ({problem})"


def _check_graph(root: yaml.Node, source: str) -> None:
    """Depth, cycles and expanded size of the node graph, without recursion and without expanding it.

    An alias is the same node object as its anchor, so each node is measured once: the number of
    values it stands for once every alias in it is expanded.
    """
    size: dict[int, int] = {}
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        kids = _children(node)
        if children_done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise MappingError(source, [f"{_at(node)}an alias refers to the value that contains it (a cycle)"])
        open_nodes.add(key)
        distinct += 1
        if len(open_nodes) > MAX_DEPTH:
            raise MappingError(source, [f"{_at(node)}nested deeper than {MAX_DEPTH} levels"])
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    if size[id(root)] - distinct > MAX_ALIAS_VALUES:
        raise MappingError(
            source,
            [f"aliases (*name) expand the document by more than {MAX_ALIAS_VALUES:,} values"],
            hint="write the values out, or nest fewer aliases in one another",
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _at(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
