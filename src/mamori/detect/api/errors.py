"""Exception handlers and the request-size guard of the scoring API."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mamori.errors import ConfigError, MamoriError, NotFittedError, SchemaError

__all__ = ["BodySizeLimit", "error_status", "install_exception_handlers"]

logger = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[MamoriError], int], ...] = (
    (SchemaError, 422),
    (ConfigError, 400),
    (NotFittedError, 409),
)


def error_status(exc: MamoriError) -> int:
    """The HTTP status a :class:`MamoriError` maps to."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


def install_exception_handlers(app: FastAPI) -> None:
    """Map :class:`MamoriError` to 4xx JSON answers and make validation errors readable.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app.
    """

    @app.exception_handler(MamoriError)
    async def _mamori_error(request: Request, exc: MamoriError) -> JSONResponse:
        code = error_status(exc)
        logger.info("%s %s -> %d: %s", request.method, request.url.path, code, exc)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:20]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append({"loc": where, "msg": err.get("msg", ""), "type": err.get("type", "")})
        first = problems[0] if problems else {"loc": "body", "msg": "invalid"}
        return JSONResponse(
            {"error": "ValidationError", "detail": f"{request.url.path}: {first['loc']}: {first['msg']}",
             "problems": problems},
            status_code=422,
        )


class BodySizeLimit:
    """ASGI middleware: refuse request bodies larger than ``max_bytes`` with 413, without reading them whole.

    Parameters
    ----------
    app : ASGI app
        The wrapped app.
    max_bytes : int
        Largest accepted body.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Any) -> None:
        body = (b'{"error":"PayloadTooLarge","detail":"request body exceeds %d bytes; send smaller batches"}'
                % self.max_bytes)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on, counting body bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        # Read the body up to the limit before the app sees it (bodies are parsed whole anyway), then replay it.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        await self.app(scope, replay_body(b"".join(chunks), receive), send)


def replay_body(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that gives the already-read ``body`` once, then defers to the real one (disconnects)."""
    done = False

    async def replay() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return dict(await receive())

    return replay
