"""The configuration reference against the code: what the settings model generates, every
option of the model documented and nothing else, and a generator that refuses to guess."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from monitor.config import Settings
from monitor.config.base import ConfigModel
from monitor.config.fields import Name, Shown
from monitor.config.models import LogSettings
from monitor.core.findings import FindingKind
from tests.docs_support import DOCS
from tools import config_reference as reference

# ----------------------------------------------------------------------------- configuration


def test_the_configuration_reference_is_generated_from_the_model() -> None:
    written = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert written == reference.render(), (
        f"docs/configuration.md is out of date: run `make docs` (`.venv/bin/{reference.GENERATOR}`)"
    )


def _model_paths(model: type[pydantic.BaseModel], prefix: str) -> Iterator[str]:
    """Every option of ``model`` as a path, walked here independently of the generator."""
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if prefix:
            yield path
        for sub, is_list in _submodels(info.annotation):
            yield from _model_paths(sub, path + ("[]" if is_list else ""))


def _submodels(annotation: Any, in_list: bool = False) -> Iterator[tuple[type[Any], bool]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation, in_list
        return
    is_tuple = typing.get_origin(annotation) is tuple
    for arg in typing.get_args(annotation):
        yield from _submodels(arg, in_list or is_tuple)


def test_every_option_of_the_model_is_documented_and_nothing_else() -> None:
    model = sorted(_model_paths(Settings, ""))
    assert sorted(reference.option_paths()) == model
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_.\[\]]+)` \|", text, re.MULTILINE))
    fields = {"san", "issuer", "key_fingerprint", "cert_fingerprint", "digest", "subject"}
    fields |= {"subject_digest", "kind", "log", "extensions"}
    kinds = {str(k) for k in FindingKind}
    assert documented - fields - kinds == set(model)
    # the text of an option is its field's description
    options = {o.path: o for sec in reference.sections() for o in sec.options}
    poll = LogSettings.model_fields["poll_interval"].description
    assert poll
    assert options["logs[].poll_interval"].description == poll


def _root(section: type[ConfigModel]) -> type[ConfigModel]:
    """A settings model of one section, ``section``."""
    return pydantic.create_model(
        "Root", __base__=ConfigModel, section=(section, pydantic.Field(default_factory=section))
    )


class _Undescribed(ConfigModel):
    name: Name = pydantic.Field(description="A name.")
    count: int = 3


class _EnvDescribed(ConfigModel):
    env_pairs: typing.ClassVar[tuple[tuple[str, str], ...]] = (("token", "token_env"),)
    token: pydantic.SecretStr | None = pydantic.Field(default=None, description="A token.")
    token_env: str | None = pydantic.Field(default=None, description="Said by hand.")


class _Unshown(ConfigModel):
    when: typing.Annotated[int, pydantic.PlainValidator(int)] = pydantic.Field(
        default=0, description="When."
    )


class _StrayNote(ConfigModel):
    count: int = pydantic.Field(
        default=0, description="How many.", json_schema_extra={"note": "Not a section."}
    )


class _Item(ConfigModel):
    name: Name = pydantic.Field(description="A name.")


class _Shown(ConfigModel):
    when: typing.Annotated[int, pydantic.PlainValidator(int), Shown("a moment")] = pydantic.Field(
        default=0, ge=0, description="When."
    )
    items: tuple[_Item, ...] = pydantic.Field(
        default=(), description="Items.", json_schema_extra={"note": "Each item once."}
    )


@pytest.mark.parametrize(
    ("section", "refusal"),
    [
        (_Undescribed, r"section\.count: no description"),
        (_EnvDescribed, r"section\.token_env: an environment field's description is generated"),
        (_Unshown, r"section\.when: a plain validator without Shown"),
        (_StrayNote, r"section\.count: a note is for a field that holds a section"),
    ],
)
def test_the_reference_refuses_to_guess(section: type[ConfigModel], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        reference.sections(_root(section))


def test_the_reference_reads_what_a_field_declares() -> None:
    top, items = reference.sections(_root(_Shown))
    when, listed = top.options
    assert (when.type, when.default, when.description) == ("a moment, at least 0", "`0`", "When.")
    assert listed.type == "list, see [`section.items[]`](#sectionitems)"
    assert (items.path, items.note) == ("section.items[]", "Each item once.")
    assert [o.type for o in items.options] == ["name"]


def test_types_bounds_and_defaults_come_from_the_model() -> None:
    options = {o.path: o for s in reference.sections() for o in s.options}
    assert options["logs[].poll_interval"].type == "duration, 1s to 1h"
    assert options["logs[].poll_interval"].default == "`30s`"
    assert options["logs[].requests_per_second"].type == "number, more than 0, at most 100"
    assert options["logs[].name"].default == "required"
    assert options["alerts.sinks[].secret"].type.endswith("(secret)")
    assert options["health.lag_seconds"].type == "seconds or duration, at least 1s"
    assert options["server.tokens[].scopes"].default == "`[read]`"
    assert "`password`" in options["database.password_env"].description
    assert options["server.tokens"].type.startswith("list, see [`server.tokens[]`]")


def test_main_writes_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    assert reference.main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == reference.render()
    assert reference.main(["a", "b"]) == 2
