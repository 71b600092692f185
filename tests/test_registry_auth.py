"""The distribution token flow against a real registry (``auth: token:``) and a token realm
in the tests: the challenge answered, tokens cached per scope until they expire, basic
credentials at the realm, a configured bearer token, and realms that misbehave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from monitor.config import parse_settings
from monitor.core.errors import RegistryAuthError, TransientLogError
from monitor.core.imageref import Repository, parse_repository
from monitor.core.metrics import ClientMetrics
from monitor.registry.auth import ANONYMOUS, Credentials, parse_challenge
from monitor.registry.client import RegistryClient
from monitor.registry.setup import client_for, credentials_of
from tests.registry_realm import TokenRealm, serving
from tests.registry_support import Pushed, Pusher, RunningRegistry, running_registry
from tests.simlog import FAST, run


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with running_registry(tmp_path_factory.mktemp("registry"), token_auth=True) as reg:
        yield reg


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Body = Callable[[RegistryClient, Repository, Pushed], Awaitable[None]]


def scenario(
    registry: RunningRegistry,
    realm: TokenRealm,
    body: Body,
    *,
    credentials: Credentials = ANONYMOUS,
    clock: Clock | None = None,
    quick: bool = False,
) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session, serving(realm):
            push = Pusher(session, registry, "acme/app")
            image = await push.image("v1")
            repo = parse_repository(f"{registry.host}/acme/app")
            policy = replace(FAST, timeout_seconds=0.5, max_attempts=2) if quick else FAST
            client = RegistryClient(
                repo,
                session,
                metrics=ClientMetrics(CollectorRegistry()),
                credentials=credentials,
                http_policy=policy,
                insecure_http=True,
                clock=clock or Clock(),
            )
            await body(client, repo, image)

    run(go)


def test_challenge_answered_and_token_cached_per_scope(registry: RunningRegistry) -> None:
    realm = TokenRealm(registry)
    clock = Clock()

    async def body(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        assert await client.tags(repo) == ["v1"]
        manifest = await client.manifest(repo, "v1")
        assert manifest is not None
        assert manifest.digest == image.digest
        assert await client.head(repo, image.digest) == image.digest
        assert len(realm.requests) == 1  # one token for the scope, used three times
        assert realm.requests[0] == {
            "service": "tlog-monitor-tests",
            "scope": "repository:acme/app:pull",
        }
        clock.now += 300 - 10 - 1  # a token is renewed a little before it expires
        await client.tags(repo)
        assert len(realm.requests) == 1
        clock.now += 2
        await client.tags(repo)
        assert len(realm.requests) == 2
        other = Repository(repo.registry, "acme/other")
        with pytest.raises(Exception, match="no such repository"):
            await client.tags(other)  # another scope, another token
        assert realm.requests[-1]["scope"] == "repository:acme/other:pull"

    scenario(registry, realm, body, clock=clock)


def test_requests_refused_together_share_one_token(registry: RunningRegistry) -> None:
    realm = TokenRealm(registry)

    async def body(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        found = await client.attachments(repo, image.digest)  # three requests at once
        assert found.referrers.source == "none"
        assert found.signatures is None
        assert len(realm.requests) == 1

    scenario(registry, realm, body)


def test_basic_credentials_at_the_realm(registry: RunningRegistry) -> None:
    realm = TokenRealm(registry, username="ci", password="s3cret")

    async def ok(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        assert await client.tags(repo) == ["v1"]

    scenario(registry, realm, ok, credentials=Credentials("ci", "s3cret"))

    async def refused(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        with pytest.raises(RegistryAuthError) as caught:
            await client.tags(repo)
        message = str(caught.value)
        assert message.startswith(f"{registry.host}/acme/app (tags): token realm 127.0.0.1:")
        assert message.endswith("answered HTTP 401")
        assert "wrong" not in message  # the password is never shown

    scenario(registry, realm, refused, credentials=Credentials("ci", "wrong"))
    assert "wrong" not in repr(Credentials("ci", "wrong"))


def test_a_client_as_the_configuration_describes_it(registry: RunningRegistry) -> None:
    """Credentials from an ``images:`` entry, resolved from the environment."""
    text = (
        "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        f"images:\n  - repository: {registry.host}/acme/app\n"
        "    username_env: REG_USER\n    password_env: REG_PASS\n    insecure_http: true\n"
    )
    environ = {"REG_USER": "ci", "REG_PASS": "s3cret"}
    (image,) = parse_settings(text, "c.yaml", environ=environ).images
    assert credentials_of(image) == Credentials("ci", "s3cret")
    realm = TokenRealm(registry, username="ci", password="s3cret")

    async def go() -> None:
        async with aiohttp.ClientSession() as session, serving(realm):
            await Pusher(session, registry, "acme/app").image("v1")
            metrics = ClientMetrics(CollectorRegistry())
            client = client_for(image, session, metrics=metrics, http_policy=FAST)
            assert await client.tags(image.repo) == ["v1"]
            assert len(realm.requests) == 1

    run(go)


def test_configured_bearer_token(registry: RunningRegistry) -> None:
    realm = TokenRealm(registry)
    assert registry.issuer is not None
    token = registry.issuer.mint_for_scope("repository:acme/app:pull")

    async def ok(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        assert await client.tags(repo) == ["v1"]
        assert realm.requests == []  # sent as is: no realm asked

    scenario(registry, realm, ok, credentials=Credentials(token=token))

    async def refused(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        with pytest.raises(RegistryAuthError, match="refused the configured bearer token"):
            await client.tags(repo)

    scenario(registry, realm, refused, credentials=Credentials(token="not.a.token"))


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("garbage", r"token realm 127\.0\.0\.1:\d+: token: the answer is not JSON"),
        ("huge", r"token realm 127\.0\.0\.1:\d+: response of \d+ bytes exceeds 65536"),
        ("no_token", "holds neither token nor access_token"),
        ("bad_token", "sent a malformed token"),
        ("refuse", r"answered HTTP 403"),
        ("expired", "HTTP 401 again with the credentials it asked for"),
    ],
)
def test_a_realm_that_misbehaves(registry: RunningRegistry, mode: str, problem: str) -> None:
    realm = TokenRealm(registry, mode=mode)

    async def body(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        with pytest.raises(RegistryAuthError, match=rf"^{registry.host}/acme/app:v1: .*{problem}"):
            await client.manifest(repo, "v1")
        assert len(realm.requests) == 1  # asked once, not in a loop

    scenario(registry, realm, body)


def test_a_realm_that_never_answers_is_bounded(registry: RunningRegistry) -> None:
    realm = TokenRealm(registry, mode="hang")

    async def body(client: RegistryClient, repo: Repository, image: Pushed) -> None:
        with pytest.raises(TransientLogError, match="failed after 2 attempts: timed out"):
            await client.tags(repo)

    scenario(registry, realm, body, quick=True)


def test_challenge_parsing() -> None:
    c = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:acme/app:pull,push",error="insufficient_scope"'
    )
    assert c is not None
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.example/token"
    assert c.params["scope"] == "repository:acme/app:pull,push"
    assert c.params["error"] == "insufficient_scope"
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None
    assert basic.scheme == "basic"
    assert basic.realm == "Registry Realm"
    assert parse_challenge('bearer realm=x, service = "a \\"b\\""') == parse_challenge(
        'Bearer realm=x,service="a \\"b\\""'
    )
    assert parse_challenge(None) is None
    assert parse_challenge("") is None


def test_credentials_of_each_kind() -> None:
    text = (
        "logs:\n  - {name: rekor, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        "images:\n  - repository: ghcr.io/acme/a\n    token_env: REG_TOKEN\n"
        "  - repository: ghcr.io/acme/b\n"
    )
    bearer, anonymous = parse_settings(text, "c.yaml", environ={"REG_TOKEN": "t0k"}).images
    assert credentials_of(bearer) == Credentials(token="t0k")
    assert credentials_of(bearer).kind == "bearer"
    assert credentials_of(anonymous) is ANONYMOUS
    assert credentials_of(anonymous).kind == "anonymous"
    assert "t0k" not in repr(credentials_of(bearer))
