"""The column types the schema is built of, portable between SQLite and PostgreSQL (see
``monitor.storage.models``), and the cleaning of text that both engines must be able to
store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from monitor.storage.cleaning import (
    INDEX_VALUE_CHARS,
    clean_json,
    clean_text,
    index_value,
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC: ``timestamptz`` on PostgreSQL, ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store takes aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SafeText(TypeDecorator[str]):
    """Text without NUL or lone surrogates (PostgreSQL refuses both)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else clean_text(value)


class IndexValue(TypeDecorator[str]):
    """An indexed identity value: cleaned, capped, compared byte-wise on both engines."""

    impl = String(INDEX_VALUE_CHARS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String(INDEX_VALUE_CHARS, collation="C"))
        return dialect.type_descriptor(String(INDEX_VALUE_CHARS))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else index_value(value)


class SafeJSON(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) whose strings are cleaned like ``SafeText``."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else clean_json(value)


# BIGINT everywhere, but SQLite only auto-increments a column declared exactly INTEGER.
BigID = BigInteger().with_variant(Integer(), "sqlite")
