"""The base of every settings model: frozen, unknown keys are errors, secrets resolved from the
environment, checks across fields, and every problem of a section reported at once in words
meant for whoever edits the YAML file."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import ErrorDetails

from monitor.config import secrets
from monitor.config.problems import Problem, validation_error

_PLAIN_MESSAGES = {
    "missing": "required but missing",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "dict_type": "must be a mapping (key: value)",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
}
_SHOW_INPUT = frozenset({"literal_error", "enum"})


class ConfigModel(BaseModel):
    """Subclasses declare ``env_pairs`` (value field, env field) and may override
    ``cross_checks`` for rules that span fields; both see the raw mapping, so that their
    problems are reported together with those of every field."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        validate_default=False,
    )

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = ()

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        """Problems between fields, from the raw mapping (types not yet checked: be wary)."""
        del raw
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _validate_all(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        if data is None:
            data = {}  # an empty section (`alerts:` with everything commented out)
        problems: list[Problem] = []
        injected: dict[str, tuple[str, str]] = {}
        if isinstance(data, Mapping):
            resolved = secrets.resolve(cls.env_pairs, data, secrets.environ_of(info))
            problems = resolved.problems + cls.cross_checks(data)
            injected = resolved.injected
            data = resolved.data
        try:
            result: Self = handler(data)
        except ValidationError as e:
            problems = [_reword(cls, err, injected) for err in e.errors()] + problems
            raise validation_error(cls.__name__, problems) from None
        if problems:
            raise validation_error(cls.__name__, problems)
        return result


def _reword(
    cls: type[ConfigModel], err: ErrorDetails, injected: Mapping[str, tuple[str, str]]
) -> Problem:
    loc = tuple(err["loc"])
    kind = err["type"]
    message = err["msg"]
    if kind == "config":
        pass  # ours, already in words
    elif kind == "extra_forbidden" and len(loc) == 1:
        message = _unknown_key(cls, str(loc[0]))
    elif kind in _PLAIN_MESSAGES:
        message = _PLAIN_MESSAGES[kind]
    else:
        message = message.removeprefix("Value error, ").replace("Input should be ", "must be ")
        given = err.get("input")
        if kind in _SHOW_INPUT and isinstance(given, str | int | float) and len(str(given)) < 80:
            message += f" (got {given!r})"
    if loc and loc[0] in injected:
        env_key, name = injected[str(loc[0])]
        loc = (env_key, *loc[1:])
        message = f"environment variable {name}: {message}"
    return Problem(loc, message)


def _unknown_key(cls: type[ConfigModel], key: str) -> str:
    known = sorted(cls.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown option (did you mean {close[0]}?)"
    return f"unknown option; the options here are {', '.join(known)}"


def raw_items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The mappings in a raw list, with their indexes; nothing if it is not a list (for
    ``cross_checks``, which see values before their types are checked)."""
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, item
