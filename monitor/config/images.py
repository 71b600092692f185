"""The ``images:`` section: container image repositories to watch on their registries, and
what a legitimate signature of their images looks like (the same selectors as watch rules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, SecretStr

from monitor.config.base import ConfigModel
from monitor.config.durations import Duration
from monitor.config.fields import EnvName, Shown, distinct
from monitor.config.problems import Problem, error
from monitor.config.selectors import OptionalSelector, SeverityName
from monitor.core.errors import MalformedInputError
from monitor.core.findings import Severity
from monitor.core.imageref import Repository, is_loopback_host, parse_repository

# a tag glob: tag characters and the glob's own (``*``, ``?``, ``[...]``, ``[!...]``)
_TAG_GLOB = re.compile(r"[\w.*?\[\]!-]{1,128}", re.ASCII)
_SECRETS = ("password", "token")
_WHO = ("username", "password", "token")


def _repository(value: str) -> str:
    """A repository name, normalised as the distribution reference grammar does."""
    if "@" in value or value.rsplit("/", 1)[-1].count(":"):
        raise error("a repository, without a tag or digest (list tags under tags:)")
    try:
        return str(parse_repository(value))
    except MalformedInputError as e:
        raise error(str(e)) from None


def _tag_glob(value: str) -> str:
    if not _TAG_GLOB.fullmatch(value):
        raise error(
            f"{value[:140]!r} is not a tag glob (letters, digits, '_', '.', '-' and the glob's "
            "'*', '?', '[...]')"
        )
    return value


ImageRepository = Annotated[
    str, AfterValidator(_repository), Shown("repository (`host/name`; Docker Hub without host)")
]
TagGlob = Annotated[str, AfterValidator(_tag_glob), Shown("tag glob")]


class ImageSettings(ConfigModel):
    """One repository of container images: which tags to watch, how to read the registry,
    and what must be attached to every image a watched tag points at."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (
        ("username", "username_env"),
        ("password", "password_env"),
        ("token", "token_env"),
    )

    repository: ImageRepository = Field(
        description="The repository, e.g. `ghcr.io/acme/app`, `localhost:5000/acme/app`; "
        "`acme/app` and `alpine` are on Docker Hub (`docker.io/acme/app`, "
        "`docker.io/library/alpine`)."
    )
    tags: Annotated[tuple[TagGlob, ...], AfterValidator(distinct)] | None = Field(
        default=None,
        description="Tag globs to watch (`v*`, `latest`); none: every tag. The tags that hold "
        "signatures, attestations and referrers (`sha256-<hex>`, `.sig`, `.att`) are never "
        "watched as images.",
    )
    username: SecretStr | None = Field(
        default=None,
        description="The registry user for basic auth or the registry's token service; set "
        "it through `username_env` (with `password_env`).",
    )
    username_env: EnvName | None = None
    password: SecretStr | None = Field(
        default=None,
        description="Never in the file: set `password_env`, the variable holding it.",
    )
    password_env: EnvName | None = None
    token: SecretStr | None = Field(
        default=None,
        description="A bearer token sent as is (e.g. a registry access token). Never in the "
        "file: set `token_env`. Without credentials the registry is read anonymously.",
    )
    token_env: EnvName | None = None
    poll_interval: Annotated[timedelta, Duration(timedelta(seconds=10), timedelta(days=1))] = Field(
        default=timedelta(minutes=5), description="How often the tags are read."
    )
    expect: OptionalSelector = Field(
        default=None,
        description="Who may sign these images: a selector, as a watch rule's `expect`. A "
        "signature by anyone else is an `unexpected_signer` finding. Without it any valid "
        "signature counts.",
    )
    require: Literal["signature", "attestation", "both"] = Field(
        default="signature",
        description="What every image a watched tag points at must carry from an expected "
        "signer: a `signature`, an `attestation`, or `both`.",
    )
    severity: SeverityName = Field(
        default=Severity.HIGH, description="How bad a finding about these images is."
    )
    grace: Annotated[timedelta, Duration(timedelta(), timedelta(days=30))] = Field(
        default=timedelta(hours=1),
        description="How long a new digest may stay without what `require` asks before it "
        "is an `unsigned_image` finding: signing follows a push.",
    )
    insecure_http: bool = Field(
        default=False,
        description="Read the registry over plain HTTP. Only for a registry on loopback "
        "(`localhost`, `127.0.0.1`, `[::1]`): a local or test registry.",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        out = [
            Problem((key,), f"keep the secret out of the file: set {key}_env instead")
            for key in _SECRETS
            if raw.get(key) is not None
        ]
        has = {k: raw.get(k) is not None or raw.get(f"{k}_env") is not None for k in _WHO}
        if has["username"] != has["password"]:
            missing = "password_env" if has["username"] else "username_env"
            out.append(Problem((missing,), "basic credentials need username_env and password_env"))
        if has["token"] and has["username"]:
            out.append(
                Problem(("token_env",), "give token_env or username_env/password_env, not both")
            )
        repository = raw.get("repository")
        if raw.get("insecure_http") is True and isinstance(repository, str):
            try:
                host = parse_repository(repository).registry
            except MalformedInputError:
                host = None  # the repository's own check says what is wrong
            if host is not None and not is_loopback_host(host):
                out.append(
                    Problem(
                        ("insecure_http",),
                        f"plain HTTP only for a registry on loopback, not {host}",
                    )
                )
        return out

    @property
    def repo(self) -> Repository:
        """The repository, parsed (its registry host and name)."""
        return parse_repository(self.repository)
