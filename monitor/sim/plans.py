"""Plans for planted entries, from the JSON that ``POST /admin/plant`` and ``sim --plant``
take. The edge between the outside and the factory's typed plans.

    {"index": 120, "identity": {"email": "mallory@evil.example", "issuer": "https://..."}}
    {"index": 121, "identity": {"github": {"owner": "acme", "repo": "app", ...}}, "kind": "dsse"}
    {"index": 122, "key_pem": "-----BEGIN PRIVATE KEY-----..."}
    {"index": 123, "image": "ghcr.io/acme/app", "digest": "<hex>", "signer": {identity}}
    {"index": 124, "digest": "<hex>"}

``key_pem`` is the signer's PRIVATE key (PKCS#8 PEM, unencrypted): the simulator signs the
entry with it, as a real signer would, since Rekor logs no entry whose signature fails. An
Ed25519 key signs the index's own artifact, so it takes no ``digest``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal, cast

from monitor.core.errors import ConfigError
from monitor.sim.ca import GitHubWorkflow
from monitor.sim.factory import (
    EmailIdentity,
    Identity,
    Plan,
    PlantDigest,
    PlantIdentity,
    PlantImage,
    PlantKey,
    UsernameIdentity,
)
from monitor.sim.keys import load_signing_key

_KINDS = ("hashedrekord", "dsse", "intoto")


def identity_from_json(doc: Any) -> Identity:
    if not isinstance(doc, dict):
        raise ConfigError("identity: expected an object")
    if "github" in doc:
        gh = doc["github"]
        known = {f.name for f in fields(GitHubWorkflow)}
        if not isinstance(gh, dict) or not set(gh) <= known or not {"owner", "repo"} <= set(gh):
            raise ConfigError(
                f"identity.github: needs owner and repo; may have {', '.join(sorted(known))}"
            )
        return GitHubWorkflow(**{k: str(v) for k, v in gh.items()})
    if "email" in doc:
        return EmailIdentity(str(doc["email"]), str(doc.get("issuer", EmailIdentity.issuer)))
    if "username" in doc and "issuer" in doc:
        return UsernameIdentity(str(doc["username"]), str(doc["issuer"]))
    raise ConfigError("identity: needs github, email, or username and issuer")


def plan_from_json(doc: Any) -> tuple[int, Plan]:
    """``(index, plan)``; raises ``ConfigError`` naming what is wrong."""
    if not isinstance(doc, dict) or not isinstance(doc.get("index"), int):
        raise ConfigError("plant: expected an object with an integer index")
    index: int = doc["index"]
    digest = doc.get("digest")
    if digest is not None and not isinstance(digest, str):
        raise ConfigError("plant: digest must be a hex string")
    plan: Plan
    if "identity" in doc:
        kind = doc.get("kind", "hashedrekord")
        if kind not in _KINDS:
            raise ConfigError(f"plant: kind must be one of {', '.join(_KINDS)}")
        plan = PlantIdentity(
            identity_from_json(doc["identity"]),
            cast(Literal["hashedrekord", "dsse", "intoto"], kind),
            digest,
        )
    elif "key_pem" in doc:
        pem = str(doc["key_pem"]).encode()
        try:
            load_signing_key(pem)
        except ValueError as e:
            raise ConfigError(f"plant: {e}") from None
        plan = PlantKey(pem, digest)
    elif "image" in doc:
        if digest is None:
            raise ConfigError("plant: an image needs its digest")
        signer = identity_from_json(doc["signer"]) if "signer" in doc else None
        plan = PlantImage(str(doc["image"]), digest, signer)
    elif digest is not None:
        plan = PlantDigest(digest)
    else:
        raise ConfigError("plant: needs identity, key_pem, image or digest")
    return index, plan
