"""The configuration reference (``docs/configuration.md``), generated from the settings model.

Names, types, bounds, defaults, which options are required and what each one means come from
the pydantic models of ``monitor.config`` (``options``); the prose around them, a complete
example and the rule language's tables are here (``prose``). ``render()`` refuses an option
without a description, so the document cannot fall behind the model unnoticed, and a test
compares the file with ``render()``.

Write the file with ``python -m tools.config_reference docs/configuration.md``.
"""

from tools.config_reference.document import GENERATOR, check, main, render
from tools.config_reference.options import Option, Section, option_paths, sections
from tools.config_reference.prose import FINDING_KINDS, GITHUB_ORG_EXAMPLE, SELECTOR_FIELDS

__all__ = [
    "FINDING_KINDS",
    "GENERATOR",
    "GITHUB_ORG_EXAMPLE",
    "SELECTOR_FIELDS",
    "Option",
    "Section",
    "check",
    "main",
    "option_paths",
    "render",
    "sections",
]
