"""What the container image tests share: the repository's paths, the image's data directory,
the digest-pin and secret-name patterns, the Dockerfile parsed into instructions and stages,
a subprocess runner and a configuration file writer. No container engine runs here, so the
image's properties are read from the Dockerfile itself."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
DATA_DIR = "/var/lib/tlog-monitor"
PINNED = re.compile(r"(?P<image>[a-z0-9][a-z0-9./_-]*):(?P<tag>[\w][\w.-]*)@sha256:[0-9a-f]{64}")
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments dropped (also those inside a
    continued instruction, as Docker drops them)."""
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            start = number
        continued = line.endswith("\\")
        parts.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, args = " ".join(parts).partition(" ")
            out.append(Instruction(keyword.upper(), args.strip(), start))
            parts = []
    assert not parts, "the Dockerfile ends inside a continued instruction"
    return out


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())


def stages() -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            out.append([])
        assert out, f"line {ins.line}: {ins.keyword} before the first FROM"
        out[-1].append(ins)
    return out


def stage_name(stage: list[Instruction]) -> str | None:
    words = stage[0].args.split()
    return words[2] if len(words) == 3 and words[1].upper() == "AS" else None


def of(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def flags(args: str) -> tuple[dict[str, str], list[str]]:
    """``--name=value`` options at the front of an instruction's arguments, and the rest."""
    words = args.split()
    opts: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        opts[name] = value
    return opts, words


def declared_args(stage: list[Instruction]) -> set[str]:
    return {a.split("=", 1)[0] for a in of(stage, "ARG")}


def final_user() -> tuple[int, int]:
    users = of(stages()[-1], "USER")
    assert users, "the final stage sets no USER: it would run as root"
    found = re.fullmatch(r"(\d+):(\d+)", users[-1])
    assert found, f"USER {users[-1]}: numeric UID:GID, so that runAsNonRoot can check it"
    return int(found[1]), int(found[2])


def run(
    command: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def write_config(tmp_path: Path, text: str, name: str = "monitor.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)
