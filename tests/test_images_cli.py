"""``tlog-monitor images check`` against a real registry and the simulator: exit codes, the
JSON shape, hostile strings escaped in what a person reads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli.main import main
from monitor.sim.pool import EmailIdentity
from tests.images_support import EXPECT, OURS, THEIRS, World, in_world, push_bundle, push_sig
from tests.registry_realm import TokenRealm, serving
from tests.registry_support import RunningRegistry, free_port, plain_registry, running_registry

registry = pytest.fixture(scope="module")(plain_registry)


async def cli(args: list[str]) -> int:
    """The command in a thread (it runs its own event loop), the simulator serving on."""
    return await asyncio.to_thread(main, args)


def watched(w: World, name: str, **extra: Any) -> Path:
    entry = {
        "repository": f"{w.registry.host}/{name}",
        "expect": EXPECT,
        "insecure_http": True,
        **extra,
    }
    return w.write_config([entry])


def test_signed_by_tag_exits_0(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/cli-ok")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, OURS, str(repo))
        await push_sig(pusher, image, made)
        config = watched(w, "acme/cli-ok")
        assert await cli(["images", "check", f"{repo}:v1", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert f"{repo}@{image.digest} (tag v1): SIGNED" in out
        assert f"sim-v1 #{made.log_index}: proven" in out
        assert f"{OURS.san_uri}" in out
        assert ": expected" in out
        assert "findings   none" in out
        assert out.rstrip().endswith("exit 0 (fine)")

    in_world(tmp_path, registry, body)


def test_json_of_an_unexpected_signer_exits_1(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/cli-theirs")
        image = await pusher.image("v1")
        made = w.signer.signature(image.digest, THEIRS, str(repo))
        await push_sig(pusher, image, made)
        config = watched(w, "acme/cli-theirs")
        ref = f"{repo}@{image.digest}"
        assert await cli(["images", "check", ref, "--config", str(config), "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["exit"] == 1
        assert doc["error"] is None
        assert doc["reference"] == ref
        assert doc["require"] == "signature"
        (digest,) = doc["digests"]
        assert digest["tags"] == []
        assert digest["digest"] == image.digest
        assert digest["status"] == "unexpected"
        assert digest["findings"] == ["unsigned_image", "unexpected_signer"]
        assert digest["missing"] == ["signature"]
        assert digest["error"] is None
        (sig,) = digest["signatures"]
        assert sig["status"] == "valid"
        assert sig["form"] == "simple-signing"
        assert sig["role"] == "signature"
        assert sig["source"] == image.digest.replace(":", "-") + ".sig"
        assert sig["signer"]["sans"] == [{"type": "email", "value": THEIRS.email}]
        assert sig["signer"]["issuer"] == THEIRS.issuer
        assert sig["entry"]["index"] == made.log_index
        assert sig["entry"]["kind"] == "hashedrekord"
        assert sig["tie"]["status"] == "proven"
        assert sig["tie"]["log"] == "sim-v1"
        assert sig["tie"]["body_sha256"] == sig["entry"]["body_sha256"]

    in_world(tmp_path, registry, body)


def test_unsigned_exits_1_and_a_missing_tag_exits_2(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/cli-unsigned")
        await pusher.image("v1")
        config = str(watched(w, "acme/cli-unsigned"))
        assert await cli(["images", "check", f"{repo}:v1", "--config", config]) == 1
        out = capsys.readouterr().out
        assert ": UNSIGNED" in out
        assert "nothing attached" in out
        assert "findings   unsigned_image" in out
        assert await cli(["images", "check", f"{repo}:nope", "--config", config]) == 2
        err = capsys.readouterr().err
        assert "no such manifest" in err
        assert await cli(["images", "check", f"{repo}:nope", "--config", config, "--json"]) == 2
        doc = json.loads(capsys.readouterr().out)
        assert doc["exit"] == 2
        assert doc["digests"] == []
        assert "no such manifest" in doc["error"]

    in_world(tmp_path, registry, body)


def test_unreachable_registry_and_bad_reference_exit_2(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body(w: World) -> None:
        host = f"127.0.0.1:{free_port()}"  # nothing listens
        entry = {"repository": f"{host}/acme/gone", "insecure_http": True}
        config = str(w.write_config([entry]))
        assert await cli(["images", "check", f"{host}/acme/gone:v1", "--config", config]) == 2
        assert "tlog-monitor: error:" in capsys.readouterr().err
        assert await cli(["images", "check", "acme/app", "--config", config]) == 2
        assert "names neither a tag nor a digest" in capsys.readouterr().err

    in_world(tmp_path, registry, body)


def test_flags_for_an_unconfigured_repository(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/cli-flags")
        image = await pusher.image("v1")
        await push_bundle(pusher, image, w.signer.bundle(image.digest, OURS, str(repo)))
        config = str(w.write_config([]))
        base = ["images", "check", f"{repo}:v1", "--config", config, "--insecure-http"]
        assert await cli([*base, "--expect-san", "https://github.com/acme/app/*"]) == 0
        assert await cli([*base, "--expect-san", "https://github.com/other/*"]) == 1
        assert (
            await cli([*base, "--expect-san", "https://github.com/acme/app/*", "--require", "both"])
            == 1
        )
        out = capsys.readouterr().out
        assert "missing    attestation from an expected signer" in out

    in_world(tmp_path, registry, body)


HOSTILE_ISSUER = "https://evil.example/\x1b[2J\u202e\nforged line"
HOSTILE_PREDICATE = "https://evil.example/\x1b]0;title\x07\r\u2066"


def test_hostile_strings_are_escaped_in_human_output(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body(w: World) -> None:
        repo, pusher = w.repo("acme/cli-hostile")
        image = await pusher.image("v1")
        who = EmailIdentity("mallory@evil.example", HOSTILE_ISSUER)
        # the simulator writes the predicate type into the statement's JSON as it stands
        predicate_type = json.dumps(HOSTILE_PREDICATE)[1:-1]
        made = w.signer.bundle(image.digest, who, str(repo), predicate_type=predicate_type)
        await push_bundle(pusher, image, made, predicate_type="x")
        config = str(watched(w, "acme/cli-hostile"))
        assert await cli(["images", "check", f"{repo}:v1", "--config", config]) == 1
        out = capsys.readouterr().out
        for bad in ("\x1b", "\u202e", "\x07", "\r", "\u2066", "\nforged line"):
            assert bad not in out, repr(bad)
        assert "\\x1b[2J\\u202e\\nforged line" in out
        assert "\\x1b]0;title\\x07\\r\\u2066" in out
        assert "attestation valid" in out  # read and verified, by an unexpected signer
        # JSON keeps the values exact
        assert await cli(["images", "check", f"{repo}:v1", "--config", config, "--json"]) == 1
        (sig,) = json.loads(capsys.readouterr().out)["digests"][0]["signatures"]
        assert sig["signer"]["issuer"] == HOSTILE_ISSUER
        assert sig["predicate_type"] == HOSTILE_PREDICATE

    in_world(tmp_path, registry, body)


def test_the_configured_credentials_are_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry that wants a token: the images: entry's credentials, from the environment,
    go to its realm."""
    monkeypatch.setenv("REG_USER", "ci")
    monkeypatch.setenv("REG_PASS", "s3cret")
    with running_registry(tmp_path / "token-registry", token_auth=True) as token_registry:
        realm = TokenRealm(token_registry, username="ci", password="s3cret")

        async def body(w: World) -> None:
            async with serving(realm):
                repo, pusher = w.repo("acme/private")
                image = await pusher.image("v1")
                await push_sig(pusher, image, w.signer.signature(image.digest, OURS, str(repo)))
                config = watched(
                    w, "acme/private", username_env="REG_USER", password_env="REG_PASS"
                )
                assert await cli(["images", "check", f"{repo}:v1", "--config", str(config)]) == 0
                assert ": SIGNED" in capsys.readouterr().out
                assert realm.requests
                monkeypatch.setenv("REG_PASS", "wrong")
                assert await cli(["images", "check", f"{repo}:v1", "--config", str(config)]) == 2
                assert "token realm" in capsys.readouterr().err

        in_world(tmp_path, token_registry, body)


def test_ties_are_proven_consistent_with_the_monitors_stored_checkpoint(
    tmp_path: Path, registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the monitor's database (after a pass of ``once``), the log's tree that holds the
    entry is proven consistent with the checkpoint the monitor verified."""

    async def body(w: World) -> None:
        config = watched(w, "acme/cli-db")
        doc = yaml.safe_load(config.read_text())
        doc["database"] = {"url": f"sqlite:///{tmp_path / 'monitor.db'}"}
        config.write_text(yaml.safe_dump(doc))
        assert await cli(["db", "upgrade", "--config", str(config)]) == 0
        assert await cli(["once", "--config", str(config)]) == 0
        verified = (await w.h.v1.log_info()).active.size
        repo, pusher = w.repo("acme/cli-db")
        image = await pusher.image("v1")
        await push_sig(pusher, image, w.signer.signature(image.digest, OURS, str(repo)))
        capsys.readouterr()
        ref = f"{repo}:v1"
        assert await cli(["images", "check", ref, "--config", str(config), "--json"]) == 0
        (sig,) = json.loads(capsys.readouterr().out)["digests"][0]["signatures"]
        assert sig["tie"]["status"] == "proven"
        assert f"consistent with the monitor's verified tree of {verified}" in sig["tie"]["detail"]

    in_world(tmp_path, registry, body)
