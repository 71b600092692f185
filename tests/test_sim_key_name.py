"""The name the simulator's Rekor v1 log signs its checkpoints under: its host by default as the
public log's ``rekor.sigstore.dev``, host:port, or a name of its own (a Kubernetes pod's), and
a new name at run time, as a restarted pod gets one."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from monitor.core.errors import ConfigError
from monitor.sim.run import SimConfig, start, v1_key_name

POD = "rekor-00001-deployment-56bf7777c9-jds5x"


def test_the_choices() -> None:
    assert v1_key_name("host", "127.0.0.1", 8080) == "127.0.0.1"
    assert v1_key_name("netloc", "127.0.0.1", 8080) == "127.0.0.1:8080"
    assert v1_key_name(POD, "127.0.0.1", 8080) == POD
    for bad in ("", "two words", "a+b", "tab\there"):
        with pytest.raises(ConfigError, match="v1 key name"):
            v1_key_name(bad, "127.0.0.1", 8080)


def check_note(note: str, name: str, tree_id: str, public_pem: bytes) -> None:
    """A Rekor v1 checkpoint: origin ``<name> - <tree ID>``, one signature line by ``name``
    that verifies with the log's key."""
    text, sigs = note.rsplit("\n\n", 1)
    assert text.split("\n")[0] == f"{name} - {tree_id}"
    (line,) = sigs.rstrip("\n").split("\n")
    dash, signer, b64 = line.split(" ")
    assert (dash, signer) == ("\u2014", name)
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    raw = base64.b64decode(b64)
    key.verify(raw[4:], (text + "\n").encode(), ec.ECDSA(hashes.SHA256()))


def test_renaming_signs_every_checkpoint_under_the_new_name(tmp_path: Path) -> None:
    async def body() -> None:
        sim = await start(SimConfig(entries=40, shards=2, seed=3, v1_key_name=POD), tmp_path)
        try:
            async with aiohttp.ClientSession(sim.base_url) as http:

                async def get(path: str) -> Any:
                    async with http.get(path) as r:
                        assert r.status == 200
                        return await r.json()

                async with http.get("/api/v1/log/publicKey") as r:
                    public_pem = await r.read()

                async def check_all(name: str) -> None:
                    info = await get("/api/v1/log")
                    for head in [info, *info["inactiveShards"]]:
                        check_note(head["signedTreeHead"], name, head["treeID"], public_pem)
                    entry = await get("/api/v1/log/entries?logIndex=35")  # the active tree's
                    (value,) = entry.values()
                    note = value["verification"]["inclusionProof"]["checkpoint"]
                    check_note(note, name, info["treeID"], public_pem)
                    assert (await get("/admin/state"))["v1"]["key_name"] == name

                await check_all(POD)
                async with http.post("/admin/v1-key-name", json={"name": "pod-2"}) as r:
                    assert r.status == 200
                    assert (await r.json())["v1"]["key_name"] == "pod-2"
                await check_all("pod-2")
                for bad in ({"name": "a b"}, {"name": ""}, {"nom": "x"}, ["pod-3"]):
                    async with http.post("/admin/v1-key-name", data=json.dumps(bad)) as r:
                        assert r.status == 400
                        assert "name" in (await r.json())["message"]
                await check_all("pod-2")
        finally:
            await sim.stop()

    asyncio.run(body())


def test_the_default_is_host_and_netloc_keeps_the_port(tmp_path: Path) -> None:
    async def body() -> None:
        for choice, netloc in ((None, False), ("host", False), ("netloc", True)):
            config = SimConfig(entries=5, shards=1)
            if choice is not None:
                config = SimConfig(entries=5, shards=1, v1_key_name=choice)
            sim = await start(config, tmp_path)
            try:
                want = sim.base_url.removeprefix("http://")
                name = sim.state.v1.key_name
                assert name == (want if netloc else want.rsplit(":", 1)[0]), (choice, name)
            finally:
                await sim.stop()

    asyncio.run(body())
