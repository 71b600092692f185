"""Every error the API answers is JSON: ``{"error": {"status", "code", "message", "param"}}``.

A client's mistake gets a 4xx that names the parameter; anything else is a 500 whose detail
goes to the log, never to the client (no traceback, no SQL, no paths).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from monitor.core.errors import MalformedInputError, QueryError, StorageError

log = logging.getLogger("monitor.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A request the API refuses, with the status and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.close = close  # the connection is closed after the answer


# counted under this status in the request metrics, as proxies count it; never sent
CLIENT_CLOSED = 499


class ClientGone(ApiError):
    """The client closed its connection before its request was complete: nobody to answer,
    and no fault of the monitor (nothing is logged)."""

    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED, "client_closed_request", "the client went away")


def bad_param(param: str, message: str) -> ApiError:
    return ApiError(400, "bad_parameter", message, param=param)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def error_response(
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"status": status, "code": code, "message": message, "param": param}}
    return web.json_response(body, status=status, headers=headers)


# aiohttp's own refusals (no route, wrong method, body too large), by status
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        response = error_response(e.status, e.code, e.message, e.param, e.headers)
        if e.close:
            response.force_close()
        return response
    except MalformedInputError as e:
        # a query naming what is not there (QueryError) names the parameter at fault
        param = e.param if isinstance(e, QueryError) else None
        code = "bad_request" if param is None else "bad_parameter"
        return error_response(400, code, str(e), param)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        headers = {k: v for k, v in e.headers.items() if k.lower() in ("allow",)}
        code = _HTTP_CODES.get(e.status, "http_error")
        return error_response(e.status, code, e.reason, headers=headers)
    except StorageError:
        log.exception("database error serving %s %s", request.method, request.path)
        return error_response(503, "database_unavailable", "the database did not answer")
    except Exception:
        log.exception("error serving %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error (logged by the monitor)")
