"""A registry client as an ``images:`` entry of the configuration describes it."""

from __future__ import annotations

import aiohttp

from monitor.config.images import ImageSettings
from monitor.core.metrics import ClientMetrics
from monitor.logclient.http import HttpPolicy
from monitor.registry.auth import ANONYMOUS, Credentials
from monitor.registry.client import DEFAULT_HTTP, DEFAULT_POLICY, RegistryClient, RegistryPolicy


def credentials_of(image: ImageSettings) -> Credentials:
    """The entry's credentials, resolved from the environment when it was loaded."""
    if image.token is not None:
        return Credentials(token=image.token.get_secret_value())
    if image.username is not None:
        password = image.password.get_secret_value() if image.password else None
        return Credentials(image.username.get_secret_value(), password)
    return ANONYMOUS


def client_for(
    image: ImageSettings,
    session: aiohttp.ClientSession,
    *,
    metrics: ClientMetrics,
    http_policy: HttpPolicy = DEFAULT_HTTP,
    policy: RegistryPolicy = DEFAULT_POLICY,
) -> RegistryClient:
    """A client of the entry's registry with the entry's credentials (one per entry: two
    entries on one registry may authenticate differently)."""
    return RegistryClient(
        image.repo,
        session,
        metrics=metrics,
        credentials=credentials_of(image),
        http_policy=http_policy,
        policy=policy,
        insecure_http=image.insecure_http,
    )
