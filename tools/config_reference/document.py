"""``docs/configuration.md``: the prose, and a table of every option of the settings model."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.config.base import ConfigModel
from monitor.config.models import Settings
from monitor.core.findings import FindingKind
from monitor.rules.spec import SIMPLE_FIELDS
from tools.config_reference.options import (
    Section,
    anchor,
    child,
    default_of,
    option_paths,
    sections,
)
from tools.config_reference.prose import (
    FINDING_KINDS,
    GITHUB_ORG,
    GITHUB_ORG_EXAMPLE,
    HEADER,
    SELECTOR_FIELDS,
    cell,
    rules_section,
)

GENERATOR = "python -m tools.config_reference docs/configuration.md"


def render() -> str:
    """``docs/configuration.md``, as the model and the prose make it."""
    check()
    parts = [
        HEADER.format(generator=GENERATOR),
        GITHUB_ORG.format(example=GITHUB_ORG_EXAMPLE.rstrip("\n")),
        rules_section(),
        _sections_text(),
    ]
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def check() -> None:
    """Refuse to write a reference that would say less than the code: every option described
    (``option_paths`` raises for one without a description), every selector field and
    finding kind in its table, nothing more."""
    option_paths()
    if set(SELECTOR_FIELDS) != set(SIMPLE_FIELDS):
        raise ValueError("SELECTOR_FIELDS must describe exactly the selector fields")
    if set(FINDING_KINDS) != set(FindingKind):
        raise ValueError("FINDING_KINDS must describe exactly the finding kinds")


def _sections_text() -> str:
    out = [
        "## Options\n",
        "| Section | Type | Default | What it is |",
        "| --- | --- | --- | --- |",
    ]
    all_sections = sections()
    top = {s.path: s for s in all_sections}
    for name, info in Settings.model_fields.items():
        section = top[child(name, info.annotation)]
        kind = "list" if section.path.endswith("[]") else "mapping"
        text = _first_sentence(section.model.__doc__ or "") or section.note
        out.append(
            f"| [`{name}`](#{anchor(section.path)}) | {kind} | {default_of(info)} | {cell(text)} |"
        )
    for section in all_sections:
        out.append("")
        out += _section_text(section)
    return "\n".join(out) + "\n"


def _section_text(section: Section) -> list[str]:
    out = [f"### `{section.path}`", ""]
    for text in (_docstring(section.model), section.note):
        if text:
            out += [_wrap(text), ""]
    out += ["| Option | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for o in section.options:
        out.append(f"| `{o.path}` | {cell(o.type)} | {cell(o.default)} | {cell(o.description)} |")
    return out


def _docstring(model: type[ConfigModel]) -> str:
    doc = model.__doc__ or ""
    if doc == ConfigModel.__doc__:
        return ""
    return " ".join(doc.split()).replace("``", "`")


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split()).replace("``", "`")
    head = text.partition(". ")[0]
    return head.rstrip(".") + "." if text else ""


def _wrap(text: str, width: int = 92) -> str:
    lines: list[str] = []
    line = ""
    for word in _unbreakable(text.split()):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return "\n".join(lines)


def _unbreakable(words: list[str]) -> list[str]:
    """Words, with a code span that holds spaces kept as one (a line break would show)."""
    out: list[str] = []
    for word in words:
        if out and out[-1].count("`") % 2:
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or write it to the file given."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if not args:
        sys.stdout.write(text)
        return 0
    if len(args) != 1:
        sys.stderr.write("usage: python -m tools.config_reference [FILE]\n")
        return 2
    Path(args[0]).write_text(text, encoding="utf-8")
    return 0
