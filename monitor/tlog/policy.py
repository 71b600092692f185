"""C2SP tlog-policy: which logs, which witnesses, and how many cosignatures make a quorum.

Grammar (one item a line, items separated by spaces or tabs, ``#`` comments, blank lines)::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> <k|all|any> <name>...
    quorum <name|none>

Witness and group names share one namespace; a group or the quorum may only name what is
defined on a preceding line (which also rules out cycles); exactly one quorum line. Parsing is
strict and every error names ``source:line``. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.errors import WitnessConfigError
from monitor.tlog.witness import (
    TYPE_ED25519,
    Cosignature,
    WitnessKey,
    check_key_id,
    split_vkey,
)

NONE = "none"
# C2SP recommends supporting at least 32 of each; these bound what a policy can cost to check
MAX_LOGS = 256
MAX_WITNESSES = 256
MAX_GROUPS = 256
MAX_POLICY_CHARS = 1 << 20
MAX_URL_CHARS = 2048
_SEPARATOR = re.compile(r"[ \t]+")
_THRESHOLD = re.compile(r"[0-9]{1,6}")
INLINE_GROUP = "configured witnesses"  # has a space, so no vkey name can collide with it


@dataclass(frozen=True)
class PolicyLog:
    """A log the policy accepts checkpoints from (Ed25519, signed-note type 0x01)."""

    name: str
    key_id: bytes
    public_key: bytes
    url: str | None = None


@dataclass(frozen=True)
class PolicyWitness:
    """A witness: its name in the policy (not necessarily its key name), key and URL."""

    name: str
    key: WitnessKey
    url: str | None = None


@dataclass(frozen=True)
class PolicyGroup:
    """A group witnesses a checkpoint when at least ``threshold`` of its members do."""

    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """A parsed tlog-policy. ``quorum`` is a witness or group name, or ``"none"``."""

    source: str
    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str

    @classmethod
    def parse(cls, text: str, source: str) -> Policy:
        """Parse a policy file's text; ``source`` (a file name, a config key) names it in
        errors."""
        return _Parser(source).parse(text)

    @classmethod
    def from_keys(cls, vkeys: Sequence[str], quorum: int, source: str) -> Policy:
        """The policy of an inline configuration: these witnesses, any ``quorum`` of them
        (0 requires none). Witnesses are named by their key names."""
        witnesses: list[PolicyWitness] = []
        seen: dict[str, int] = {}
        for i, vkey in enumerate(vkeys, 1):
            try:
                key = WitnessKey.parse(vkey)
            except WitnessConfigError as e:
                raise WitnessConfigError(f"key {i}: {e.reason}", source) from e
            for other in witnesses:
                same = "key" if other.key.public_key == key.public_key else "name"
                if same == "key" or other.name == key.name:
                    raise WitnessConfigError(
                        f"key {i} ({key.name!r}) has the same {same} as key {seen[other.name]}",
                        source,
                    )
            seen[key.name] = i
            witnesses.append(PolicyWitness(key.name, key))
        if len(witnesses) > MAX_WITNESSES:
            raise WitnessConfigError(f"more than {MAX_WITNESSES} witnesses", source)
        if isinstance(quorum, bool) or not isinstance(quorum, int):
            raise WitnessConfigError(f"quorum must be a whole number, not {quorum!r}", source)
        if not 0 <= quorum <= len(witnesses):
            raise WitnessConfigError(
                f"quorum {quorum} is out of range: {len(witnesses)} witness keys are configured",
                source,
            )
        if quorum == 0:
            return cls(source, (), tuple(witnesses), (), NONE)
        group = PolicyGroup(INLINE_GROUP, quorum, tuple(w.name for w in witnesses))
        return cls(source, (), tuple(witnesses), (group,), INLINE_GROUP)

    @property
    def witness_keys(self) -> tuple[WitnessKey, ...]:
        return tuple(w.key for w in self.witnesses)

    def cosigned_by(self, cosignatures: Iterable[Cosignature]) -> frozenset[str]:
        """The policy names of the witnesses with a verified cosignature among these."""
        verified = {(c.witness, c.key_id) for c in cosignatures if c.status == "verified"}
        return frozenset(
            w.name for w in self.witnesses if (w.key.name, w.key.key_id.hex()) in verified
        )

    def satisfied(self, cosigned: Iterable[str]) -> bool:
        """Whether witnesses of these policy names (others are ignored) make the quorum."""
        return self.missing(cosigned) is None

    def missing(self, cosigned: Iterable[str]) -> str | None:
        """What the quorum still lacks, e.g. ``2 of group 'X' needed, 1 cosigned (X1)``;
        None when it is met."""
        if self.quorum == NONE:
            return None
        done = frozenset(cosigned) & {w.name for w in self.witnesses}
        groups = {g.name: g for g in self.groups}
        met: dict[str, bool] = {}

        def holds(name: str) -> bool:
            if name not in met:
                group = groups.get(name)
                met[name] = (
                    name in done
                    if group is None
                    else sum(holds(m) for m in group.members) >= group.threshold
                )
            return met[name]

        def explain(name: str) -> str:
            group = groups.get(name)
            if group is None:
                return f"witness {name!r} has not cosigned"
            ok = [m for m in group.members if holds(m)]
            need = (
                f"all {group.threshold}"
                if group.threshold == len(group.members) > 1
                else str(group.threshold)
            )
            line = f"{need} of group {name!r} needed, {len(ok)} "
            line += "cosigned" if all(m not in groups for m in group.members) else "met"
            if ok:
                line += f" ({', '.join(ok)})"
            short = [explain(m) for m in group.members if m in groups and not holds(m)]
            return line + "".join(f"; {s}" for s in short)

        return None if holds(self.quorum) else explain(self.quorum)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.logs: list[PolicyLog] = []
        self.witnesses: list[PolicyWitness] = []
        self.groups: list[PolicyGroup] = []
        self.defined: dict[str, int] = {}  # name -> line it is defined on
        self.quorum: tuple[str, int] | None = None
        self.later: dict[str, int] = {}  # every name defined anywhere, for clearer errors

    def error(self, line: int, message: str) -> WitnessConfigError:
        return WitnessConfigError(message, self.source, line)

    def parse(self, text: str) -> Policy:
        if len(text) > MAX_POLICY_CHARS:
            raise WitnessConfigError(
                f"policy is larger than {MAX_POLICY_CHARS} characters", self.source
            )
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it does not start another
        tokenized = [(n, self.tokens(n, line)) for n, line in enumerate(lines, 1)]
        for n, tokens in tokenized:
            if len(tokens) >= 2 and tokens[0] in ("witness", "group"):
                self.later.setdefault(tokens[1], n)
        for n, tokens in tokenized:
            if tokens:
                self.line(n, tokens)
        if self.quorum is None:
            raise WitnessConfigError("policy has no quorum line", self.source)
        return Policy(
            self.source,
            tuple(self.logs),
            tuple(self.witnesses),
            tuple(self.groups),
            self.quorum[0],
        )

    def tokens(self, n: int, line: str) -> list[str]:
        for ch in line:
            if (ch < " " and ch != "\t") or ch == "\x7f":
                hint = " (CRLF line endings?)" if ch == "\r" else ""
                raise self.error(n, f"control character {ord(ch):#04x} is not allowed{hint}")
            if "\ud800" <= ch <= "\udfff":
                raise self.error(n, "line is not valid UTF-8")
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            return []
        return _SEPARATOR.split(stripped)

    def line(self, n: int, tokens: list[str]) -> None:
        keyword, args = tokens[0], tokens[1:]
        if keyword == "log":
            self.log(n, args)
        elif keyword == "witness":
            self.witness(n, args)
        elif keyword == "group":
            self.group(n, args)
        elif keyword == "quorum":
            self.set_quorum(n, args)
        else:
            raise self.error(
                n, f"unknown keyword {keyword[:40]!r} (expected log, witness, group or quorum)"
            )

    def url(self, n: int, args: list[str], usage: str) -> str | None:
        if len(args) > 1:
            raise self.error(n, f"unexpected {args[1][:40]!r} after the URL; usage: {usage}")
        if args and len(args[0]) > MAX_URL_CHARS:
            raise self.error(n, f"URL is longer than {MAX_URL_CHARS} characters")
        return args[0] if args else None

    def log(self, n: int, args: list[str]) -> None:
        usage = "log <vkey> [<url>]"
        if not args:
            raise self.error(n, f"log line has no key; usage: {usage}")
        url = self.url(n, args[1:], usage)
        try:
            name, key_id, type_byte, material = split_vkey(args[0])
            if type_byte != TYPE_ED25519 or len(material) != 32:
                raise WitnessConfigError(
                    f"verifier key {name!r}: log keys must be Ed25519 (type 0x01, 32 bytes), "
                    f"not type {type_byte:#04x} with {len(material)} bytes"
                )
            check_key_id(name, key_id, type_byte, material)
        except WitnessConfigError as e:
            raise self.error(n, e.reason) from e
        for other in self.logs:
            if other.public_key == material:
                raise self.error(n, f"log key {name!r} duplicates the key of log {other.name!r}")
        if len(self.logs) >= MAX_LOGS:
            raise self.error(n, f"more than {MAX_LOGS} logs")
        self.logs.append(PolicyLog(name, key_id, material, url))

    def new_name(self, n: int, name: str, what: str) -> None:
        if name == NONE:
            raise self.error(n, f"{what} cannot be named {NONE!r}: it is reserved")
        if name in self.defined:
            raise self.error(
                n, f"duplicate name {name!r} (already defined on line {self.defined[name]})"
            )

    def witness(self, n: int, args: list[str]) -> None:
        usage = "witness <name> <vkey> [<url>]"
        if len(args) < 2:
            raise self.error(n, f"witness line needs a name and a key; usage: {usage}")
        name = args[0]
        self.new_name(n, name, "a witness")
        url = self.url(n, args[2:], usage)
        try:
            key = WitnessKey.parse(args[1])
        except WitnessConfigError as e:
            raise self.error(n, e.reason) from e
        for other in self.witnesses:
            if other.key.public_key == key.public_key:
                raise self.error(
                    n,
                    f"witness {name!r} has the same key as witness {other.name!r} "
                    f"(line {self.defined[other.name]})",
                )
        if len(self.witnesses) >= MAX_WITNESSES:
            raise self.error(n, f"more than {MAX_WITNESSES} witnesses")
        self.defined[name] = n
        self.witnesses.append(PolicyWitness(name, key, url))

    def reference(self, n: int, name: str, by: str) -> None:
        if name in self.defined:
            return
        if name == by:
            raise self.error(n, f"group {by!r} lists itself (a cycle)")
        if name in self.later:
            raise self.error(
                n,
                f"{name!r} is defined only later, on line {self.later[name]}: a name must be "
                "defined before it is used (which also rules out cycles)",
            )
        raise self.error(n, f"unknown member {name!r}: no witness or group of that name")

    def group(self, n: int, args: list[str]) -> None:
        usage = "group <name> <k|all|any> <member>..."
        if len(args) < 3:
            raise self.error(n, f"group line needs a name, a threshold and members; usage: {usage}")
        name, threshold_text, members = args[0], args[1], args[2:]
        self.new_name(n, name, "a group")
        seen: set[str] = set()
        for member in members:
            if member == NONE:
                raise self.error(n, f"{NONE!r} cannot be a group member")
            self.reference(n, member, name)
            if member in seen:
                raise self.error(n, f"member {member!r} is listed twice in group {name!r}")
            seen.add(member)
        if threshold_text == "all":
            threshold = len(members)
        elif threshold_text == "any":
            threshold = 1
        elif _THRESHOLD.fullmatch(threshold_text):
            threshold = int(threshold_text)
            if not 1 <= threshold <= len(members):
                raise self.error(
                    n,
                    f"threshold {threshold} of group {name!r} is out of range: "
                    f"it has {len(members)} members",
                )
        else:
            raise self.error(
                n, f"threshold {threshold_text[:40]!r} is not a number, 'all' or 'any'"
            )
        if len(self.groups) >= MAX_GROUPS:
            raise self.error(n, f"more than {MAX_GROUPS} groups")
        self.defined[name] = n
        self.groups.append(PolicyGroup(name, threshold, tuple(members)))

    def set_quorum(self, n: int, args: list[str]) -> None:
        if len(args) != 1:
            raise self.error(n, "quorum line needs exactly one name; usage: quorum <name>")
        if self.quorum is not None:
            raise self.error(n, f"second quorum line (the first is on line {self.quorum[1]})")
        name = args[0]
        if name != NONE:
            if name in self.later and name not in self.defined:
                raise self.error(
                    n, f"quorum {name!r} is defined only later, on line {self.later[name]}"
                )
            if name not in self.defined:
                raise self.error(n, f"quorum names {name!r}: no witness or group of that name")
        self.quorum = (name, n)
