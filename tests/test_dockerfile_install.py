"""The install procedure the image shares with CI: scripts/install-locked.sh installs from the
hash-locked files only, then scripts/check-install.sh checks the result. Both run for real."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dockerfile_support import ROOT, run


def shell_commands(path: Path) -> list[str]:
    """A shell script's commands, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    return [c.strip() for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]


def test_the_install_script_checks_every_hash() -> None:
    commands = shell_commands(ROOT / "scripts" / "install-locked.sh")
    pip_installs = [c for c in commands if re.search(r"\bpip (?:install|sync)\b", c)]
    assert len(pip_installs) == 3
    for command in pip_installs:
        # the project's own wheel, built just before from this checkout, is the one exception
        own_wheel = "--no-deps" in command and "wheels[0]" in command
        assert "--require-hashes" in command or own_wheel, command
        assert "--no-build" in command or "requirements/bootstrap.txt" in command, command
    (export,) = [c for c in commands if " export " in c]
    assert "--locked" in export
    assert "--no-dev" in export
    assert "--no-hashes" not in export
    (build,) = [c for c in commands if re.search(r"\buv\S*\" build\b", c)]
    assert "--build-constraints requirements/build.txt" in build
    assert "--require-build-hashes" in build
    for name in ("bootstrap.txt", "build.txt"):
        requirements = re.split(r"\n(?=\S)", (ROOT / "requirements" / name).read_text().strip())
        for req in requirements:
            if req.startswith("#"):
                continue
            assert re.match(r"[\w.-]+==\S+", req), f"{name}: {req}"
            assert "--hash=sha256:" in req, f"{name}: {req}"


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root``: mode, modification time, and content (or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = "-> " + os.readlink(path)
        elif path.is_dir():
            content = "dir"
        else:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        out[path.relative_to(root).as_posix()] = (st.st_mode, int(st.st_mtime), content)
    return out


def run_script(name: str, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(ROOT / "scripts" / name), *map(str, args)]
    return run(command, {**os.environ, "PYTHON": sys.executable, **env}, timeout=900)


@pytest.mark.online  # downloads from PyPI; .ci/run performs the same install and check
def test_locked_install_checks_out_and_is_reproducible(tmp_path: Path) -> None:
    """What CI and the image do: install from the locks, check the result; and a second
    install of the same tree at the same path is byte-for-byte the same."""
    venv = tmp_path / "venv"
    epoch = "1700000000"
    first = run_script("install-locked.sh", venv, SOURCE_DATE_EPOCH=epoch)
    assert first.returncode == 0, first.stderr
    check = run_script("check-install.sh", venv)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[0] == f"tlog-monitor {version()}"
    assert "runtime only" in check.stdout
    before = tree(venv)
    assert max(mtime for _, mtime, _ in before.values()) == int(epoch)  # no build time leaks
    assert any(name.endswith(".pyc") for name in before)  # compiled for a read-only root
    shutil.rmtree(venv)
    second = run_script("install-locked.sh", venv, SOURCE_DATE_EPOCH=epoch)
    assert second.returncode == 0, second.stderr
    after = tree(venv)
    assert after.keys() == before.keys()
    assert [n for n in before if before[n] != after[n]] == []


def version() -> str:
    text = (ROOT / "monitor" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert found
    return found[1]


def test_check_install_rejects_a_development_environment() -> None:
    # the environment running these tests: the project installed editable, pytest in it
    result = run_script("check-install.sh", sys.prefix)
    assert result.returncode != 0
    assert "check-install:" in result.stderr


def test_install_refuses_an_existing_directory(tmp_path: Path) -> None:
    result = run_script("install-locked.sh", tmp_path)
    assert result.returncode == 2
    assert "already exists" in result.stderr
