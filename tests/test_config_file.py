"""Configuration: reading the file: syntax errors and a top level that is not a mapping
named with their line, missing and unreadable files, paths relative to the file, and the
database section read alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigFileError, load_settings, parse_settings
from monitor.config.load import load_database_settings
from monitor.core.errors import ConfigError
from tests.config_support import MINIMAL, config_errors


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("logs:\n  - name: rekor\n    api: v1\n   url: https://x\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}:4: YAML syntax error: ")
    path.write_text("logs: [a, b\nwatch: []\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2: YAML syntax error: .*flow sequence"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("- a\n- b\n", "c.yaml:1: the top level is a list"),
        ("just words\n", "c.yaml:1: the top level is a string"),
        ("", "c.yaml: the file is empty"),
        ("# only comments\n", "c.yaml: the file is empty"),
    ],
)
def test_the_top_level_must_be_a_mapping(text: str, what: str) -> None:
    (line,) = config_errors(text)
    assert line == (
        f"{what}; a configuration is a mapping of sections: logs, trust, database, ha, server, "
        "watch, images, alerts, health, processing"
    )


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'nope.yaml'}: cannot read the configuration: No such file or directory"
    )
    with pytest.raises(ConfigError, match="cannot read the configuration: Is a directory"):
        load_settings(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"logs:\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"binary\.yaml:2: not UTF-8 text"):
        load_settings(binary)


def test_relative_paths_are_relative_to_the_file_wherever_it_is_read_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "etc"
    (home / "trust").mkdir(parents=True)
    for name in ("trusted_root", "signing_config"):
        (home / "trust" / f"{name}.json").write_text("{}")
    config = home / "monitor.yaml"
    config.write_text(
        MINIMAL + "trust:\n  trusted_root: trust/trusted_root.json\n"
        "  signing_config: trust/signing_config.json\n"
        "database:\n  url: sqlite+aiosqlite:///../var/monitor.db\n"
    )
    elsewhere = tmp_path / "else"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings("../etc/monitor.yaml", environ={})
    assert settings.trust.trusted_root == str(home / "trust" / "trusted_root.json")
    assert settings.trust.signing_config == str(home / "trust" / "signing_config.json")
    assert settings.trust.tuf_cache == str(home / "data" / "tuf")  # a default, beside the file
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'monitor.db'}"
    assert load_database_settings("../etc/monitor.yaml", environ={}) == settings.database
    # a missing file names where it was looked for
    config.write_text(MINIMAL + "trust:\n  trusted_root: nope.json\n")
    with pytest.raises(ConfigFileError) as info:
        load_settings(config, environ={})
    assert info.value.lines == (
        f"{config}:4: trust.trusted_root: nope.json: no such file ({home / 'nope.json'}) "
        "(give a path, or 'default')",
    )
    # text with no file behind it keeps the working directory's
    absolute = parse_settings(MINIMAL, "c.yaml", environ={})
    assert absolute.database.url == "sqlite+aiosqlite:///data/monitor.db"


def test_the_database_section_alone_is_read_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text(
        "logs: nonsense\nserver: {listen: nowhere}\n"
        "database:\n  url: sqlite+aiosqlite:///m.db\n  pool_size: 0\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_database_settings(config, environ={})
    assert info.value.lines == (
        f"{config}:5: database.pool_size: must be greater than or equal to 1",
    )
    config.write_text("logs: nonsense\nserver: {listen: nowhere}\n")  # no database: the default
    assert load_database_settings(config, environ={}).url == (
        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'monitor.db'}"
    )
    config.write_text("- a list\n")
    with pytest.raises(ConfigFileError, match="the top level is a list"):
        load_database_settings(config, environ={})
