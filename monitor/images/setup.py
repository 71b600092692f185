"""What checking images needs, built from the configuration: the trust root with the JSON
sigstore-python verifies against (the same files, or the same TUF fetch), and the image
checker over the configured logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiohttp

from monitor.config.images import ImageSettings
from monitor.config.models import Settings
from monitor.core.imageref import Repository
from monitor.core.metrics import ClientMetrics
from monitor.images.checker import ImageChecker
from monitor.images.ties import LogTies, Ours
from monitor.trust import TrustRoot, build_trust_root, load_trust_root, read_trusted_root


@dataclass(frozen=True)
class ImageTrust:
    trust: TrustRoot
    trusted_root_json: bytes  # what ImageVerifier takes


def load_image_trust(settings: Settings) -> ImageTrust:
    """The settings' trust root and its TrustedRoot JSON. Blocking (``refresh: tuf`` is
    online): call it from a worker thread in async code."""
    t = settings.trust
    if t.refresh == "tuf":
        from monitor.trust.tuf import refresh_trust_files  # noqa: PLC0415 - online only

        url = str(t.tuf_url)
        root, config = refresh_trust_files(Path(t.tuf_cache), url)
        trust = build_trust_root(
            root, config, source=f"TUF {url}", signing_config_source=f"TUF {url} signing config"
        )
        return ImageTrust(trust, root)
    return ImageTrust(
        load_trust_root(t.trusted_root, t.signing_config), read_trusted_root(t.trusted_root)
    )


def build_checker(
    settings: Settings,
    image_trust: ImageTrust,
    session: aiohttp.ClientSession,
    *,
    metrics: ClientMetrics,
    ours: Ours | None = None,
) -> ImageChecker:
    """A checker verifying against the trust root, tying entries to the configured logs."""
    ties = LogTies(image_trust.trust, settings.logs, session, metrics=metrics, ours=ours)
    from monitor.imagesig.verify import ImageVerifier  # noqa: PLC0415  (sigstore: ~50 MB)

    return ImageChecker(ImageVerifier(image_trust.trusted_root_json), ties)


def image_settings_for(settings: Settings, repo: Repository) -> ImageSettings | None:
    """The configured ``images:`` entry of ``repo``, if any."""
    for image in settings.images:
        if image.repo == repo:
            return image
    return None
