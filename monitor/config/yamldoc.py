"""A YAML file read once into both its data and its node tree, so that a problem at a field
path (``watch[1].match.san[1]``) can be named by its line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.config.problems import ConfigFileError, Loc, Located, Problem

MAX_CONFIG_BYTES = 4 << 20
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Document:
    source: str  # the path as given, used in messages
    data: Any
    root: Node | None
    problems: tuple[Located, ...]  # found while reading (duplicate keys)

    def line_of(self, loc: Loc) -> int | None:
        """The line (1-based) of the deepest node on ``loc``: the key's line for a mapping
        entry, the item's for a list item, the enclosing one's for a missing key."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, MappingNode):
                found = _entry(node, part)
                if found is None:
                    break
                key, node = found
                line = key.start_mark.line + 1
            elif isinstance(node, SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def error(self, problems: list[Problem], *, section: str | None = None) -> ConfigFileError:
        """Every problem of the file (of one ``section`` only, when given): those found while
        reading, then ``problems``."""
        found = [p for p in self.problems if section is None or p.loc[:1] == (section,)]
        located = [Located(self.line_of(p.loc), p.loc, p.message) for p in problems]
        return ConfigFileError(self.source, [*found, *located])


def _entry(node: MappingNode, part: str | int) -> tuple[Node, Node] | None:
    """The entry for key ``part``: the last one, as it is the one whose value counts."""
    found = None
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == str(part):
            found = key, value
    return found


def read_document(path: str | Path) -> Document:
    """Read and parse; raises ``ConfigFileError`` for an unreadable file or bad YAML."""
    source = str(path)
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigFileError(
            source, [Located(None, (), f"cannot read the configuration: {e.strerror or e}")]
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(
            source, [Located(None, (), f"larger than {MAX_CONFIG_BYTES} bytes: not a config")]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigFileError(source, [Located(line, (), "not UTF-8 text")]) from None
    return parse_document(text, source)


def parse_document(text: str, source: str = "<config>") -> Document:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        problems = tuple(_duplicate_keys(root, (), set())) if root is not None else ()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(p for p in (e.context, e.problem) if p) or "not valid YAML"
        raise ConfigFileError(source, [Located(line, (), f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as e:
        raise ConfigFileError(source, [Located(None, (), f"not valid YAML: {e}")]) from None
    finally:
        loader.dispose()
    return Document(source, data, root, problems)


def _duplicate_keys(node: Node, loc: Loc, seen_nodes: set[int]) -> list[Located]:
    if id(node) in seen_nodes:
        return []  # an alias: checked where its anchor is
    seen_nodes.add(id(node))
    out: list[Located] = []
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                continue
            line = key.start_mark.line + 1
            if key.value in first:
                out.append(
                    Located(
                        line,
                        (*loc, key.value),
                        f"given twice (first at line {first[key.value]})",
                    )
                )
            else:
                first[key.value] = line
            out += _duplicate_keys(value, (*loc, key.value), seen_nodes)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            out += _duplicate_keys(item, (*loc, i), seen_nodes)
    return out
