"""What the documentation tests share: the Markdown files, their fenced blocks, prose and
code spans, and the webhook secret the examples use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MARKDOWN = [README, ROOT / "config" / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[(?:[^\]]|\][^(])*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.MULTILINE)
COMMAND = re.compile(r"(?<![\w.-])tlog-monitor ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")

SECRET = "whsec_dGhpcyBpcyB0aGUgc29jIHNlY3JldCwgbG9uZyBlbm91Z2g="


def fences(text: str, lang: str | None = None) -> list[str]:
    """The fenced code blocks of a Markdown text (of one language, if given)."""
    return [body for info, body in FENCE.findall(text) if lang is None or info.strip() == lang]


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every fenced block and inline code span."""
    return [*fences(text), *SPAN.findall(prose(text))]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))
