"""Secrets from the environment: ``secret_env: NAME`` stands for ``secret: <value of $NAME>``.

Resolved while the settings are validated, so that a missing variable is one more problem in
the list, named by the field and the variable. Values are never put in messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationInfo

from monitor.config.problems import Problem

ENVIRON_CONTEXT_KEY = "environ"


def environ_of(info: ValidationInfo) -> Mapping[str, str]:
    """The environment to read: ``context={"environ": {...}}`` if given, else the process's."""
    context = info.context
    if isinstance(context, Mapping):
        env = context.get(ENVIRON_CONTEXT_KEY)
        if isinstance(env, Mapping):
            return env
    return os.environ


@dataclass(frozen=True)
class Resolved:
    data: dict[str, Any]
    problems: list[Problem]
    injected: dict[str, tuple[str, str]]  # value field -> (env field, variable name)


def resolve(
    pairs: tuple[tuple[str, str], ...], raw: Mapping[str, Any], environ: Mapping[str, str]
) -> Resolved:
    """For each ``(value field, env field)`` pair given by its env field, put the variable's
    value under the value field. Problems: both given, variable unset or empty."""
    data = dict(raw)
    problems: list[Problem] = []
    injected: dict[str, tuple[str, str]] = {}
    for value_key, env_key in pairs:
        name = data.get(env_key)
        if name is None:
            continue
        if data.get(value_key) is not None:
            problems.append(
                Problem((env_key,), f"give {value_key} or {env_key}, not both"),
            )
            continue
        if not isinstance(name, str):
            continue  # the field's own validation says what is wrong with it
        value = environ.get(name)
        if value is None:
            problems.append(Problem((env_key,), f"environment variable {name} is not set"))
        elif not value.strip():
            problems.append(Problem((env_key,), f"environment variable {name} is empty"))
        else:
            data[value_key] = value.strip()
            injected[value_key] = (env_key, name)
    return Resolved(data, problems, injected)
