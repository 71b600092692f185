"""Schemathesis fuzzes the running API from its own OpenAPI document: valid and invalid
requests on every operation, over loopback, on a database a real pass filled. No answer may
be a 500, and every answer must match the document (status, content type, schema)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.api_support import ADMIN_TOKEN, fill, served
from tests.simlog import run


class _ServerThread(threading.Thread):
    """The API on its own event loop, so that schemathesis's blocking calls can reach it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.db_url = url
        self.base = ""
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:
            self.failed = e
            self.ready.set()

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        async with served(self.db_url) as client:
            self.base = client.base
            self.ready.set()
            await self._stopping.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(10)


@pytest.fixture(scope="module")
def api_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    url = f"sqlite+aiosqlite:///{tmp / 'api.db'}"
    run(lambda: fill(tmp, url))
    server = _ServerThread(url)
    server.start()
    server.ready.wait(30)
    if server.failed is not None:
        raise server.failed
    yield server.base
    server.stop()


def cases() -> list[tuple[str, GenerationMode]]:
    """Every operation of the document as "METHOD path", with valid requests, and invalid
    ones where it takes parameters (read from the code: an operation added later is fuzzed
    without touching this test)."""
    from monitor.api.openapi import document

    doc = document("0", 1000, health_public=True, metrics_public=False)
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            out.append((f"{method.upper()} {path}", GenerationMode.POSITIVE))
            if any(map(_negatable, op.get("parameters", ()))) or op.get("requestBody"):
                out.append((f"{method.upper()} {path}", GenerationMode.NEGATIVE))
    return out


def _negatable(param: dict[str, Any]) -> bool:
    """Whether an invalid value of ``param`` can be sent: a path segment that is any
    non-empty string (a log's name) has none (an empty one is another route)."""
    schema = param.get("schema", {})
    return not (param.get("in") == "path" and set(schema) <= {"type", "minLength"})


@pytest.mark.parametrize(("operation", "mode"), cases(), ids=str)
def test_every_operation_answers_as_documented(
    api_base: str, operation: str, mode: GenerationMode
) -> None:
    # schemathesis's pytest plugin does not run under this pytest; its engine does
    schema = schemathesis.openapi.from_url(f"{api_base}/api/v1/openapi.json")
    # the token is ours to send (below): a negative case that drops or spoils the header would
    # be undone by it; and an extra query parameter that serializes to nothing (an empty list)
    # is no longer in the request. Unknown parameters and missing or bad tokens have their own
    # tests in test_api.py.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    method, path = operation.split(" ", 1)
    op = schema[path][method]

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case[Any]) -> None:
        # positive_data_acceptance is left out: a schema-valid request can still be refused,
        # rightly, by rules OpenAPI cannot state (since after until, an opaque cursor that
        # is not one of ours); every other check runs, no answer may be a 500
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            excluded_checks=[positive_data_acceptance],
        )

    check()
