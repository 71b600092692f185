"""monitor.daemon.logsetup: JSON lines that parse and carry the structured fields, tracebacks only
where they help, the terminal text format, TTY detection, idempotent setup, level checking."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import ConfigError, VerificationError
from monitor.daemon.logsetup import JsonFormatter, TextFormatter, log_fields, setup_logging

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TEXT_RE = re.compile(r"^\d\d:\d\d:\d\d info monitor\.t: hello n=1$")


class TtyIO(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide loggers: put them back for the other tests."""
    names = ["monitor", "aiohttp.access", "apscheduler", "sqlalchemy"]
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers)) for n in names}
    propagate = logging.getLogger("monitor").propagate
    yield
    for n, (level, handlers) in saved.items():
        lg = logging.getLogger(n)
        lg.setLevel(level)
        lg.handlers[:] = handlers
    logging.getLogger("monitor").propagate = propagate


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(stream)]


def record(
    msg: str = "hello",
    *,
    level: int = logging.INFO,
    fields: object = None,
    exc: BaseException | None = None,
    args: tuple[object, ...] = (),
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    rec = logging.LogRecord("monitor.t", level, __file__, 1, msg, args, exc_info)
    if fields is not None:
        rec.__dict__["fields"] = fields
    return rec


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as ``logger.exception`` would see it."""
    try:
        raise exc
    except BaseException as e:
        return e


# --- JSON -------------------------------------------------------------------------------------


def test_json_line_has_the_core_keys_and_the_fields_at_top_level() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out)
    logging.getLogger("monitor.daemon").info(
        "pass done", extra={"fields": {"log": "rekor", "entries": 42, "ok": True}}
    )
    [doc] = json_lines(out)
    assert doc == {
        "time": doc["time"],
        "level": "info",
        "logger": "monitor.daemon",
        "message": "pass done",
        "log": "rekor",
        "entries": 42,
        "ok": True,
    }
    assert TIME_RE.match(doc["time"])


def test_json_time_is_rfc3339_utc_with_milliseconds() -> None:
    rec = record()
    rec.created = datetime(2026, 11, 25, 17, 20, 1, 123000, tzinfo=UTC).timestamp()
    doc = json.loads(JsonFormatter().format(rec))
    assert doc["time"] == "2026-11-25T17:20:01.123Z"


def test_json_level_is_lowercase_and_message_is_formatted() -> None:
    doc = json.loads(JsonFormatter().format(record("%d entries", level=logging.WARNING, args=(7,))))
    assert (doc["level"], doc["message"]) == ("warning", "7 entries")


def test_json_values_that_json_cannot_encode_go_through_str() -> None:
    fields = {
        "path": Path("/var/lib/monitor"),
        "when": datetime(2026, 1, 2, tzinfo=UTC),
        "blob": b"\x00\x01",
        "nan": math.nan,
        "nested": {(1, 2): "tuple key"},
        "bad": Unprintable(),
    }
    line = JsonFormatter().format(record(fields=fields))
    assert "\n" not in line
    doc = json.loads(line)  # strict JSON: NaN would not be valid, so it is a string
    assert doc["path"] == "/var/lib/monitor"
    assert doc["when"] == str(datetime(2026, 1, 2, tzinfo=UTC))
    assert doc["blob"] == str(b"\x00\x01")
    assert doc["nan"] == "nan"
    assert doc["nested"] == str({(1, 2): "tuple key"})
    assert doc["bad"] == "<unprintable Unprintable>"
    assert doc["message"] == "hello"


def test_json_formatting_never_raises() -> None:
    # %-arguments that do not fit the message, and an exception whose str() raises
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("nope")

    rec = record("%d %d", args=("x",), exc=raised(Weird()))
    doc = json.loads(JsonFormatter().format(rec))
    assert "%d %d" in doc["message"]
    assert doc["error"].startswith("Weird")


def test_json_field_named_like_a_core_key_does_not_overwrite_it() -> None:
    doc = json.loads(JsonFormatter().format(record(fields={"message": "x", "level": 9})))
    assert (doc["message"], doc["level"]) == ("hello", "info")
    assert (doc["field_message"], doc["field_level"]) == ("x", 9)


def test_monitor_error_at_info_has_error_but_no_traceback() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out)
    try:
        raise ConfigError("no logs configured")
    except ConfigError:
        logging.getLogger("monitor.cli").exception("cannot start", extra={"fields": {"n": 1}})
    [doc] = json_lines(out)
    assert doc["error"] == "ConfigError: no logs configured"
    assert "traceback" not in doc
    assert (doc["level"], doc["message"], doc["n"]) == ("error", "cannot start", 1)


def test_monitor_error_subclass_with_own_str_has_no_traceback() -> None:
    exc = raised(VerificationError("inclusion", "root mismatch"))
    doc = json.loads(JsonFormatter().format(record(exc=exc, level=logging.ERROR)))
    assert doc["error"] == "VerificationError: inclusion: root mismatch"
    assert "traceback" not in doc


def test_other_exceptions_carry_the_traceback() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("monitor.daemon").exception("task crashed")
    [doc] = json_lines(out)
    assert doc["error"] == "ValueError: boom"
    assert doc["traceback"].startswith("Traceback (most recent call last):")
    assert "raise ValueError" in doc["traceback"]
    assert doc["traceback"].rstrip().endswith("ValueError: boom")


def test_monitor_error_carries_the_traceback_at_debug_level() -> None:
    out = io.StringIO()
    setup_logging("debug", json_format=True, stream=out)
    try:
        raise ConfigError("no logs configured")
    except ConfigError:
        logging.getLogger("monitor.cli").exception("cannot start")
    [doc] = json_lines(out)
    assert doc["error"] == "ConfigError: no logs configured"
    assert "raise ConfigError" in doc["traceback"]


def test_debug_record_carries_the_traceback_of_a_monitor_error() -> None:
    rec = record(level=logging.DEBUG, exc=raised(ConfigError("x")))
    assert "traceback" in json.loads(JsonFormatter().format(rec))


def test_exception_outside_except_adds_nothing() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out)
    logging.getLogger("monitor.t").exception("no exception here")
    [doc] = json_lines(out)
    assert "error" not in doc
    assert "traceback" not in doc


# --- log_fields -------------------------------------------------------------------------------


def test_log_fields_puts_keywords_in_fields_and_names_the_caller() -> None:
    out = io.StringIO()
    setup_logging("debug", json_format=True, stream=out)
    collect = Collect()
    logger = logging.getLogger("monitor.t")
    logger.addHandler(collect)
    try:
        log_fields(logger, logging.DEBUG, "fetched 100%", log="rekor", size=10)
    finally:
        logger.removeHandler(collect)
    [doc] = json_lines(out)
    assert doc["level"] == "debug"
    assert doc["message"] == "fetched 100%"
    assert (doc["log"], doc["size"]) == ("rekor", 10)
    [rec] = collect.records
    assert rec.funcName == "test_log_fields_puts_keywords_in_fields_and_names_the_caller"


def test_log_fields_respects_the_level() -> None:
    out = io.StringIO()
    setup_logging("warning", json_format=True, stream=out)
    log_fields(logging.getLogger("monitor.t"), logging.INFO, "quiet", n=1)
    log_fields(logging.getLogger("monitor.t"), logging.ERROR, "loud", n=2)
    assert [d["message"] for d in json_lines(out)] == ["loud"]


# --- text -------------------------------------------------------------------------------------


def test_text_line_is_time_level_logger_message_fields() -> None:
    rec = record(fields={"log": "rekor", "entries": 3, "note": "two words", "empty": ""})
    rec.created = 1_800_000_000.5
    clock = time.strftime("%H:%M:%S", time.localtime(rec.created))
    assert TextFormatter().format(rec) == (
        f'{clock} info monitor.t: hello log=rekor entries=3 note="two words" empty=""'
    )


def test_text_exception_shows_error_and_traceback_only_for_non_monitor_errors() -> None:
    line = TextFormatter().format(record(exc=raised(ConfigError("bad file"))))
    assert line.endswith('error="ConfigError: bad file"')
    assert "\n" not in line

    text = TextFormatter().format(record(exc=raised(KeyError("k"))))
    first, *rest = text.split("\n")
    assert first.endswith("error=\"KeyError: 'k'\"")
    assert rest[0] == "Traceback (most recent call last):"

    debug = TextFormatter(debug=True).format(record(exc=raised(ConfigError("bad file"))))
    assert "Traceback (most recent call last):" in debug


def test_text_lines_escape_what_a_log_controls() -> None:
    """A terminal line quotes origins, SANs and errors a log sent: no forged line, no escape
    sequence, no reordering reaches the terminal; JSON keeps the values exact."""
    hostile = "pod\r\n12:00:00 info monitor.t: all good \x1b[31m\u202eevil"
    rec = record("name: %s", args=(hostile,), fields={"now": hostile})
    line = TextFormatter().format(rec)
    assert "\n" not in line
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert "pod\\r\\n12:00:00" in line
    assert "\\x1b[31m\\u202eevil" in line
    (doc,) = [json.loads(JsonFormatter().format(rec))]
    assert doc["now"] == hostile


def test_text_formatting_never_raises() -> None:
    line = TextFormatter().format(record("%d", args=("x",), fields={"bad": Unprintable()}))
    assert line.endswith(' bad="<unprintable Unprintable>"')
    assert "%d" in line


# --- setup ------------------------------------------------------------------------------------


def test_json_when_the_stream_is_not_a_tty() -> None:
    out = io.StringIO()
    setup_logging("info", stream=out)
    logging.getLogger("monitor.t").info("hello", extra={"fields": {"n": 1}})
    [doc] = json_lines(out)
    assert (doc["message"], doc["n"]) == ("hello", 1)


def test_text_when_the_stream_is_a_tty() -> None:
    out = TtyIO()
    setup_logging("info", stream=out)
    logging.getLogger("monitor.t").info("hello", extra={"fields": {"n": 1}})
    [line] = lines(out)
    assert TEXT_RE.match(line), line


def test_explicit_format_overrides_tty_detection() -> None:
    tty, pipe = TtyIO(), io.StringIO()
    setup_logging("info", json_format=True, stream=tty)
    logging.getLogger("monitor.t").info("hello", extra={"fields": {"n": 1}})
    setup_logging("info", json_format=False, stream=pipe)
    logging.getLogger("monitor.t").info("hello", extra={"fields": {"n": 1}})
    assert json.loads(tty.getvalue())["n"] == 1
    assert TEXT_RE.match(pipe.getvalue().strip())


def test_default_stream_is_stderr_at_call_time(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info")
    logging.getLogger("monitor.t").info("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["message"] == "to stderr"
    assert not sys.stderr.isatty()


def test_setup_twice_does_not_duplicate_handlers() -> None:
    first, second = io.StringIO(), io.StringIO()
    foreign = Collect()
    logger = logging.getLogger("monitor")
    logger.addHandler(foreign)
    setup_logging("info", json_format=True, stream=first)
    setup_logging("info", json_format=True, stream=second)
    setup_logging("info", json_format=True, stream=second)
    logging.getLogger("monitor.t").info("once")
    assert first.getvalue() == ""
    assert [d["message"] for d in json_lines(second)] == ["once"]
    assert foreign in logger.handlers  # someone else's handler is left alone
    assert len(logger.handlers) == 2


def test_level_names_are_case_insensitive_and_filter() -> None:
    out = io.StringIO()
    setup_logging("WARNING", json_format=True, stream=out)
    logger = logging.getLogger("monitor.t")
    logger.info("dropped")
    logger.warning("kept")
    assert [d["message"] for d in json_lines(out)] == ["kept"]
    setup_logging(" Debug ", json_format=True, stream=out)
    assert logging.getLogger("monitor").level == logging.DEBUG


def test_bad_level_names_the_value_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        setup_logging("verbose", stream=io.StringIO())
    assert "'verbose'" in str(info.value)
    assert "debug, info, warning, error" in str(info.value)


def test_bad_level_changes_nothing() -> None:
    out = io.StringIO()
    setup_logging("info", json_format=True, stream=out)
    with pytest.raises(ConfigError):
        setup_logging("critical", stream=io.StringIO())
    logging.getLogger("monitor.t").info("still here")
    assert [d["message"] for d in json_lines(out)] == ["still here"]


def test_noisy_libraries_are_quieted_and_others_left_alone() -> None:
    logging.getLogger("sqlalchemy").setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG)
    setup_logging("debug", stream=io.StringIO())
    assert logging.getLogger("aiohttp.access").level == logging.WARNING
    assert logging.getLogger("apscheduler").level == logging.WARNING
    assert logging.getLogger("sqlalchemy").level == logging.INFO
    assert not logging.getLogger("sqlalchemy").handlers


def test_monitor_lines_are_not_printed_again_by_a_root_handler() -> None:
    out = io.StringIO()
    root_handler = Collect()
    logging.getLogger().addHandler(root_handler)
    try:
        setup_logging("info", json_format=True, stream=out)
        logging.getLogger("monitor.t").info("only once")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert len(json_lines(out)) == 1
    assert root_handler.records == []
