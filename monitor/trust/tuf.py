"""Refresh the trust root from Sigstore's TUF repository (online only).

The TUF client verifies the repository's signed metadata starting from the root that the
``sigstore`` package ships, so what it returns is as trustworthy as the offline default, and
newer. Blocking: call it from a worker thread in async code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tuf.api.exceptions import DownloadError, RepositoryError
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.updater import Updater

from monitor import __version__
from monitor.core.errors import TrustRootError
from monitor.trust.root import TrustRoot, build_trust_root

PRODUCTION_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
_EMBEDDED_STORE = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
TRUSTED_ROOT_TARGET = "trusted_root.json"
# The Rekor v2 signing config first; older repositories only have the plain one.
SIGNING_CONFIG_TARGETS = ("signing_config_rekor_v2.v0.2.json", "signing_config.v0.2.json")


def _fetch(updater: Updater, name: str) -> bytes | None:
    info = updater.get_targetinfo(name)
    if info is None:
        return None
    path = updater.find_cached_target(info) or updater.download_target(info)
    return Path(path).read_bytes()


def refresh_trust_root(cache_dir: Path, url: str = PRODUCTION_TUF_URL) -> TrustRoot:
    """Update TUF metadata into ``cache_dir`` and build the trust root from its targets."""
    root, config = refresh_trust_files(cache_dir, url)
    return build_trust_root(
        root, config, source=f"TUF {url}", signing_config_source=f"TUF {url} signing config"
    )


def refresh_trust_files(
    cache_dir: Path, url: str = PRODUCTION_TUF_URL
) -> tuple[bytes, bytes | None]:
    """Update TUF metadata into ``cache_dir``: the trusted root's JSON and the signing
    config's (None if the repository has none), as verified targets."""
    metadata_dir = cache_dir / "metadata"
    targets_dir = cache_dir / "targets"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    targets_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = None
    if url == PRODUCTION_TUF_URL and not (metadata_dir / "root.json").exists():
        bootstrap = (
            resources.files("sigstore") / "_store" / _EMBEDDED_STORE / "root.json"
        ).read_bytes()
    try:
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=url,
            target_dir=str(targets_dir),
            target_base_url=f"{url.rstrip('/')}/targets/",
            config=UpdaterConfig(app_user_agent=f"tlog-monitor/{__version__}"),
            bootstrap=bootstrap,
        )
        updater.refresh()
        root = _fetch(updater, TRUSTED_ROOT_TARGET)
        config = None
        for name in SIGNING_CONFIG_TARGETS:
            config = _fetch(updater, name)
            if config is not None:
                break
    except (RepositoryError, DownloadError, OSError, ValueError) as e:
        raise TrustRootError(f"TUF refresh from {url} failed: {e}") from e
    if root is None:
        raise TrustRootError(f"TUF repository {url} has no {TRUSTED_ROOT_TARGET}")
    return root, config
