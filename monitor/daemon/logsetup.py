"""Structured logging for the daemon and the ``run``, ``once`` and ``backfill`` commands.

Everything tlog-monitor logs goes through loggers under ``monitor`` (``logging.getLogger(
__name__)``). ``setup_logging`` gives that namespace one handler: JSON lines when the output is
not a terminal (a service, a container: what log collectors parse), short text lines when it is.

Convention: the message is a fixed, human sentence; the variable parts go in structured fields,
passed as ``extra={"fields": {...}}`` (or through ``log_fields``)::

    logger.info("pass done", extra={"fields": {"log": name, "entries": n}})
    log_fields(logger, logging.INFO, "pass done", log=name, entries=n)

In JSON the fields sit at the top level of the object next to ``time``, ``level``, ``logger``
and ``message``; in text they follow the message as ``key=value``. A field named like one of
those keys is kept as ``field_<name>`` rather than overwrite it.

Exceptions (``logger.exception`` or ``exc_info=``) add ``error`` ("Type: message"). The traceback
is added only when it helps: for exceptions that are not ``MonitorError`` (a bug, or a library
failing unexpectedly), or when logging at debug level. A ``MonitorError`` is a user-facing
error whose message says everything.

Formatting never raises: a value JSON cannot encode is logged as its ``str()``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

from monitor.core.errors import ConfigError, MonitorError
from monitor.core.escape import escape

__all__ = [
    "LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "is_terminal",
    "log_fields",
    "parse_level",
    "setup_logging",
]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

ROOT = "monitor"
# libraries that log per request or per job: only their warnings are worth a line
NOISY = ("aiohttp.access", "apscheduler")

CORE_KEYS = frozenset({"time", "level", "logger", "message", "error", "traceback", "stack"})

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class _MonitorHandler(logging.StreamHandler[TextIO]):
    """The handler ``setup_logging`` installs; its type is how a second call finds it."""


def setup_logging(
    level: str = "info", *, json_format: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send the ``monitor`` loggers to ``stream`` (default: stderr) at ``level``.

    ``json_format=None`` picks JSON unless the stream is a terminal. Calling again replaces the
    earlier setup rather than adding a second handler. Raises ``ConfigError`` for an unknown
    level.
    """
    levelno = parse_level(level)
    out = stream if stream is not None else sys.stderr
    use_json = not is_terminal(out) if json_format is None else json_format
    debug = levelno <= logging.DEBUG

    handler = _MonitorHandler(out)
    handler.setFormatter(JsonFormatter(debug=debug) if use_json else TextFormatter(debug=debug))

    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if isinstance(h, _MonitorHandler)]:
        logger.removeHandler(old)
        old.flush()
        old.close()
    logger.addHandler(handler)
    logger.setLevel(levelno)
    # the monitor owns its output: a handler some library puts on the root logger must not
    # print every line a second time, in another format
    logger.propagate = False

    for name in NOISY:
        # their warnings go out as the monitor's lines do (one format on standard error)
        noisy = logging.getLogger(name)
        noisy.setLevel(logging.WARNING)
        for old in [h for h in noisy.handlers if isinstance(h, _MonitorHandler)]:
            noisy.removeHandler(old)
        noisy.addHandler(handler)
        noisy.propagate = False


def parse_level(level: str) -> int:
    """The ``logging`` level for a name from the config or the command line."""
    try:
        return LEVELS[level.strip().lower()]
    except (KeyError, AttributeError):
        allowed = ", ".join(LEVELS)
        raise ConfigError(f"unknown log level {level!r}: use one of {allowed}") from None


def log_fields(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """``logger.log`` with structured fields, attributed to the caller's line."""
    logger.log(level, message, extra={"fields": fields}, stacklevel=2)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors (journald, Loki, Cloud Logging) parse."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        try:
            return _dumps(self._document(record))
        except Exception as e:  # a log line must never take the daemon down
            return _dumps(
                {
                    "time": _rfc3339(time.time()),
                    "level": "error",
                    "logger": __name__,
                    "message": "a log record could not be formatted",
                    "error": _describe(e),
                    "original": _str(getattr(record, "msg", None)),
                }
            )

    def _document(self, record: logging.LogRecord) -> dict[str, object]:
        doc: dict[str, object] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in _fields(record).items():
            doc[f"field_{key}" if key in CORE_KEYS else key] = value
        exc = _exc_info(record)
        if exc is not None:
            doc["error"] = _describe(exc[1])
            if _wants_traceback(exc[1], record, debug=self.debug):
                doc["traceback"] = self.formatException(exc)
        if record.stack_info:
            doc["stack"] = record.stack_info
        return doc


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: message key=value ...``: short lines for a person at a
    terminal (local time; the date and zone are rarely what they look for)."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._line(record)
        except Exception as e:  # a log line must never take the daemon down
            return f"log record could not be formatted: {_describe(e)}: {_str(record.msg)}"

    def _line(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        # a terminal line: what a log controls (an origin, a SAN) must not forge lines or
        # sequences, so the message and the values are escaped; JSON lines need none of it
        message = escape(_message(record))
        parts = [f"{clock} {record.levelname.lower()} {record.name}: {message}"]
        fields = dict(_fields(record))
        exc = _exc_info(record)
        if exc is not None:
            fields["error"] = _describe(exc[1])
        parts += [f"{key}={_text_value(value)}" for key, value in fields.items()]
        line = " ".join(parts)
        if exc is not None and _wants_traceback(exc[1], record, debug=self.debug):
            line += "\n" + self.formatException(exc)
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


def is_terminal(stream: TextIO) -> bool:
    """Whether a person is likely reading ``stream``; a stream that cannot say is not a TTY."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no such method, or a closed stream
        return False


def _rfc3339(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.removesuffix("+00:00") + "Z"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # %-arguments that do not fit the message: show both, do not lose them
        return f"{_str(record.msg)} {_str(record.args)}"


def _fields(record: logging.LogRecord) -> Mapping[str, object]:
    fields = getattr(record, "fields", None)
    if fields is None:
        return {}
    if isinstance(fields, Mapping):
        return {str(key): value for key, value in fields.items()}
    return {"fields": fields}


def _exc_info(record: logging.LogRecord) -> ExcInfo | None:
    exc = record.exc_info
    if not exc or exc[0] is None or exc[1] is None:  # e.g. logger.exception outside `except`
        return None
    return exc[0], exc[1], exc[2]


def _describe(exc: BaseException) -> str:
    text = _str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _wants_traceback(exc: BaseException, record: logging.LogRecord, *, debug: bool) -> bool:
    return debug or record.levelno <= logging.DEBUG or not isinstance(exc, MonitorError)


def _dumps(doc: Mapping[str, object]) -> str:
    try:
        return json.dumps(doc, default=_str, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        # one bad value (a NaN, a cycle, a dict with tuple keys) must not lose the others
        safe = {key: _safe(value) for key, value in doc.items()}
        return json.dumps(safe, default=_str, ensure_ascii=False, allow_nan=False)


def _safe(value: object) -> object:
    try:
        json.dumps(value, default=_str, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _str(value)
    return value


def _str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a __str__ that raises
        return f"<unprintable {type(value).__name__}>"


def _text_value(value: object) -> str:
    text = escape(_str(value))
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text
