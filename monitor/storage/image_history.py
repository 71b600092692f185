"""History by image: which log entries a registry signature ties to an image, and the image
references each history item carries.

An image filter is a repository (every tag and digest of it), a reference with a tag (the
digest the tag points at, and the platforms of that index) or with a digest (that digest, and
the index it is a platform of: an index's signature covers its platforms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, literal, select, tuple_, union
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.errors import MalformedInputError, QueryError
from monitor.core.findings import FindingImage
from monitor.core.imageref import parse_reference, parse_repository
from monitor.storage.images import IMAGE_DIGESTS, IMAGE_SIGNATURES
from monitor.storage.models import NO_TAG


@dataclass(frozen=True)
class ImageFilter:
    """A parsed ``HistoryQuery.image``."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def image_filter(text: str) -> ImageFilter:
    """``text`` as a repository or a reference; ``QueryError`` (parameter ``image``) if it is
    neither."""
    value = text.strip()
    try:
        last = value.rsplit("/", 1)[-1]
        if "@" in value or ":" in last:
            ref = parse_reference(value)
            return ImageFilter(str(ref.repository), ref.tag, ref.digest)
        return ImageFilter(str(parse_repository(value)))
    except MalformedInputError as e:
        raise QueryError(
            f"{text[:200]!r} is not an image: give a repository (ghcr.io/acme/app), or a "
            f"reference with a tag or a digest (ghcr.io/acme/app:1.0, ...@sha256:<hex>): {e}",
            "image",
        ) from None


def _digests_of(f: ImageFilter) -> ColumnElement[bool] | None:
    """The condition on ``image_signatures.digest`` for ``f`` (None: any digest): one IN
    over a UNION, each part driven by an index (an OR of two INs left PostgreSQL a nested
    loop over every digest of the repository)."""
    s, d = IMAGE_SIGNATURES, IMAGE_DIGESTS
    if f.digest is not None:
        # the digest itself, and the index it is a platform of
        index_of = select(d.c.index_digest.label("digest")).where(
            d.c.repository == f.repository,
            d.c.digest == f.digest,
            d.c.index_digest.is_not(None),
        )
        return s.c.digest.in_(union(select(literal(f.digest).label("digest")), index_of))
    if f.tag is not None:
        tagged = d.alias("tagged")
        platform = d.alias("platform")
        points_at = select(tagged.c.digest).where(
            tagged.c.repository == f.repository, tagged.c.tag == f.tag
        )
        # the platforms of the index the tag points at
        platforms = (
            select(platform.c.digest)
            .join(
                tagged,
                and_(
                    tagged.c.repository == f.repository,
                    tagged.c.tag == f.tag,
                    tagged.c.digest == platform.c.index_digest,
                ),
            )
            .where(platform.c.repository == f.repository)
        )
        return s.c.digest.in_(union(points_at, platforms))
    return None


def linked_keys(f: ImageFilter) -> Select[tuple[str, int]]:
    """(log, index) of every entry a signature of ``f`` is tied to."""
    s = IMAGE_SIGNATURES
    conds: list[ColumnElement[bool]] = [s.c.repository == f.repository, s.c.log != NO_TAG]
    digests = _digests_of(f)
    if digests is not None:
        conds.append(digests)
    return select(s.c.log, s.c.log_index).where(and_(*conds))


async def image_refs(
    conn: AsyncConnection, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[FindingImage, ...]]:
    """The image references linked to each of ``keys`` (log, index): one per (repository,
    tag, digest) with the tags pointing at the linked digest (none: ``tag`` null)."""
    if not keys:
        return {}
    s, d = IMAGE_SIGNATURES, IMAGE_DIGESTS
    stmt = (
        select(s.c.log, s.c.log_index, s.c.repository, s.c.digest, d.c.tag)
        .join_from(
            s,
            d,
            and_(d.c.repository == s.c.repository, d.c.digest == s.c.digest, d.c.tag != NO_TAG),
            isouter=True,
        )
        .where(tuple_(s.c.log, s.c.log_index).in_(list(keys)))
        .distinct()
    )
    found: dict[tuple[str, int], set[tuple[str, str | None, str]]] = {}
    for log, idx, repository, digest, tag in (await conn.execute(stmt)).all():
        found.setdefault((log, idx), set()).add((repository, tag or None, digest))
    return {
        key: tuple(
            FindingImage(r, t, dg)
            for r, t, dg in sorted(refs, key=lambda x: (x[0], x[1] or "", x[2]))
        )
        for key, refs in found.items()
    }
