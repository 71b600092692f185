"""An ``index_all`` row: one compact line per log entry, built where the entry is parsed (a
parse worker too, which is why this module loads no SQLAlchemy) and stored by
``store_batch``."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.entries.record import CertificateSigner, SigningRecord
from monitor.storage.cleaning import clean_text, index_value, stored_hash

__all__ = ["INDEX_COLUMNS", "IndexRow"]

INDEX_COLUMNS = (
    "log_id",
    "idx",
    "time",
    "kind",
    "san",
    "issuer",
    "key_fingerprint",
    "digest",
    "key_hash",
    "digest_hash",
)


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One ``index_all`` row: a compact line per log entry."""

    log: str
    index: int
    time: int  # unix seconds: integrated time, else when the monitor saw the entry
    kind: str
    san: str | None = None
    issuer: str | None = None
    key_fingerprint: str | None = None
    digest: str | None = None

    def values(self, log_id: int) -> tuple[object, ...]:
        """The ``index_all`` row's values in ``INDEX_COLUMNS`` order (``log_id``: the log's
        number in ``index_all_logs``), cleaned as the column types clean them."""
        # written out rather than looped: this runs for every entry of the log
        key = None if self.key_fingerprint is None else index_value(self.key_fingerprint)
        digest = None if self.digest is None else index_value(self.digest)
        return (
            log_id,
            self.index,
            self.time,
            clean_text(self.kind),
            None if self.san is None else index_value(self.san),
            None if self.issuer is None else index_value(self.issuer),
            key,
            digest,
            None if key is None else stored_hash(key),
            None if digest is None else stored_hash(digest),
        )

    def row(self, log_id: int) -> dict[str, object]:
        """The ``index_all`` table row, by column name."""
        return dict(zip(INDEX_COLUMNS, self.values(log_id), strict=True))

    def __reduce__(self) -> tuple[type[IndexRow], tuple[object, ...]]:
        # parse workers send one row per entry: pickled as its values, a row loads about
        # four times faster than with its attribute names
        return (
            IndexRow,
            (
                self.log,
                self.index,
                self.time,
                self.kind,
                self.san,
                self.issuer,
                self.key_fingerprint,
                self.digest,
            ),
        )

    @classmethod
    def from_record(cls, r: SigningRecord, seen: int) -> IndexRow:
        """The row for ``r``: first SAN, issuer and key fingerprint of the first signer (a
        certificate's key), and the first digest (artifact, payload, then subject)."""
        san = issuer = key = None
        if r.signers:
            s = r.signers[0]
            if isinstance(s, CertificateSigner):
                san = s.sans[0].value if s.sans else None
                issuer = s.issuer
                key = s.key.fingerprint
            else:
                key = s.fingerprint
        digests = [*r.artifact_digests, *([r.payload_hash] if r.payload_hash else [])]
        digests += [d for subj in r.subjects for d in subj.digests]
        t = r.integrated_time if r.integrated_time is not None else seen
        return cls(
            r.log, r.index, t, r.kind, san, issuer, key, str(digests[0]) if digests else None
        )
