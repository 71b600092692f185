"""A log's witnesses: whose cosignatures its checkpoints must (or should) carry, and what
happens when they do not (``monitor.daemon.witnessing``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationInfo

from monitor.config.base import ConfigModel
from monitor.config.durations import Duration
from monitor.config.fields import EnvName, HttpUrl, Shown
from monitor.config.paths import anchored, base_of
from monitor.config.problems import Problem, error
from monitor.core.errors import WitnessConfigError
from monitor.core.imageref import is_loopback_host
from monitor.tlog.policy import Policy

MAX_POLICY_BYTES = 1 << 20


def _is_inline(value: str) -> bool:
    return "\n" in value.strip("\n") or value.lstrip().startswith(("witness ", "quorum "))


def read_policy(value: str) -> Policy:
    """The policy ``value`` holds: the policy itself (several lines), or a file's path."""
    if _is_inline(value):
        return Policy.parse(value, "inline policy")
    try:
        with open(value, "rb") as f:
            raw = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        raise WitnessConfigError(f"cannot read the policy: {e.strerror or e}", value) from None
    if len(raw) > MAX_POLICY_BYTES:
        raise WitnessConfigError(f"larger than {MAX_POLICY_BYTES} bytes", value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessConfigError("not UTF-8 text", value) from None
    return Policy.parse(text, value)


def _policy(value: str, info: ValidationInfo) -> str:
    """A policy file (relative to the configuration file's directory, kept as its absolute
    path) or the policy itself, parsed now so that a mistake is named at start."""
    if not _is_inline(value):
        value = anchored(value, base_of(info))
        if not Path(value).is_file():
            raise error(f"{value}: no such file (give a C2SP tlog-policy file, or the policy)")
    try:
        read_policy(value)
    except WitnessConfigError as e:
        raise error(str(e)) from None
    return value


def _yaml_off(value: Any) -> Any:
    """YAML 1.1 reads an unquoted ``off`` as false: ``mode: off`` means the word."""
    return "off" if value is False else value


class PeerSettings(ConfigModel):
    """Another vantage point holding the log's checkpoints, to compare with the monitor's."""

    env_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("token", "token_env"),)

    url: HttpUrl = Field(description="Its base URL (the paths below are appended).")
    type: Literal["distributor", "witness", "monitor"] = Field(
        description="`distributor`: `GET /distributor/v0/logs/<log ID>/checkpoint.1` (as "
        "the transparency.dev distributor serves). `witness`: a witness's read endpoint, "
        "`GET /witness/v0/logs/<log ID>/checkpoint` (as the transparency.dev witness "
        "serves). `monitor`: another tlog-monitor, `GET /api/v1/logs/<log>/checkpoint`. "
        'The log ID is the hex SHA-256 of "o:" and the log\'s origin.'
    )
    log: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="`monitor` only: the log's name at that monitor (default: the same name).",
    )
    token: SecretStr | None = Field(
        default=None,
        description="`monitor` only: a read token of that monitor. Better in `token_env`.",
    )
    token_env: EnvName | None = None

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        out = []
        url = raw.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is not None and (parts.username is not None or parts.password is not None):
            # it is shown in findings, metrics and logs: no credentials in it
            out.append(Problem(("url",), "holds a user name or password: give token_env"))
        token = raw.get("token") is not None or raw.get("token_env") is not None
        if (
            token
            and parts is not None
            and parts.scheme == "http"
            and not is_loopback_host(parts.netloc)
        ):
            out.append(Problem(("url",), "plain http would send the token in clear: use https"))
        if raw.get("type") != "monitor":
            out += [
                Problem((key,), "applies to type: monitor only")
                for key in ("log", "token", "token_env")
                if raw.get(key) is not None
            ]
        return out


class WitnessSettings(ConfigModel):
    """Witness cosignatures on a Rekor v2 log's checkpoints (C2SP tlog-cosignature), and
    other vantage points to compare the log's checkpoints with."""

    policy: Annotated[str, AfterValidator(_policy), Shown("file path or policy")] | None = Field(
        default=None,
        description="A C2SP tlog-policy: the path of a policy file, or the policy itself (its "
        "`witness`, `group` and `quorum` lines). Or give `keys` and `quorum`.",
    )
    keys: tuple[str, ...] = Field(
        default=(),
        description="Witness verifier keys (vkeys: `name+keyid+base64`), as the witnesses "
        "publish them; any `quorum` of them must cosign.",
    )
    quorum: int | None = Field(
        default=None,
        ge=0,
        description="With `keys`: how many of them must cosign a checkpoint (default: a majority).",
    )
    mode: Annotated[Literal["require", "warn", "off"], BeforeValidator(_yaml_off)] | None = Field(
        default=None,
        description="Default `warn` when witnesses are given, else `off`. `require`: a "
        "checkpoint short of the quorum is not accepted (the "
        "monitor waits for a witnessed one, and after `unwitnessed_after` raises a high "
        "`unwitnessed_checkpoint` finding). `warn`: it is accepted, and after "
        "`unwitnessed_after` a medium finding is raised. `off`: cosignatures are recorded only.",
    )
    unwitnessed_after: Annotated[timedelta, Duration(timedelta(seconds=1), timedelta(days=7))] = (
        Field(
            default=timedelta(minutes=10),
            description="How long the log's checkpoints may stay short of the quorum before that "
            "is a finding: witnesses cosign a little after the log signs.",
        )
    )
    distributor: HttpUrl | None = Field(
        default=None,
        description="A checkpoint distributor to compare the log's checkpoints with, by its "
        "base URL (e.g. `https://api.transparency.dev`; `/distributor/v0/...` is appended). "
        "The same as a `compare_with` entry of type `distributor`.",
    )
    compare_with: tuple[PeerSettings, ...] = Field(
        default=(),
        max_length=32,
        description="Other vantage points to compare the log's checkpoints with: "
        "distributors, witnesses that serve what they hold, other monitors. After each pass "
        "each one's latest checkpoint of the log is read and proven consistent with the "
        "monitor's; one that is not is a critical `split_view` integrity failure.",
    )

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any]) -> list[Problem]:
        out = []
        keys, policy, quorum = raw.get("keys") or (), raw.get("policy"), raw.get("quorum")
        if policy is not None and keys:
            out.append(Problem(("keys",), "give policy or keys, not both"))
        if quorum is not None and not keys:
            out.append(Problem(("quorum",), "applies to keys: a policy says its own quorum"))
        if isinstance(keys, list | tuple) and keys and policy is None:
            try:
                Policy.from_keys(list(keys), _quorum(quorum, len(keys)), "keys")
            except WitnessConfigError as e:
                out.append(Problem(("keys",), e.reason))
        if raw.get("mode") in ("require", "warn") and policy is None and not keys:
            out.append(
                Problem(("mode",), "needs the witnesses: give policy, or keys (or mode: off)")
            )
        return out

    @property
    def effective_mode(self) -> Literal["require", "warn", "off"]:
        if self.mode is not None:
            return self.mode
        return "warn" if self.policy is not None or self.keys else "off"

    def peers(self) -> tuple[PeerSettings, ...]:
        """Every vantage point to compare with: ``distributor``, then ``compare_with``."""
        first = (
            ()
            if self.distributor is None
            else (PeerSettings(url=self.distributor, type="distributor"),)
        )
        return first + self.compare_with

    def load_policy(self) -> Policy | None:
        """The witnesses and quorum configured (None: none are)."""
        if self.policy is not None:
            return read_policy(self.policy)
        if self.keys:
            return Policy.from_keys(self.keys, _quorum(self.quorum, len(self.keys)), "keys")
        return None


def _quorum(quorum: Any, keys: int) -> int:
    return quorum if isinstance(quorum, int) else keys // 2 + 1
