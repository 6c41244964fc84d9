"""A lean ASGI path for well-formed ``POST /v1/score`` requests (the latency-critical endpoint).

FastAPI's request machinery (routing, dependency resolution, body parsing, exception middleware, response
classes) cost about twice the scoring itself per single-event request. :class:`ScoreFastPath` answers a valid
JSON scoring request directly: the same ``json.loads`` and the same pydantic validation of
``EventIn | ScoreBatchIn`` that FastAPI runs, the same scoring call, the same response body. Anything else —
another path, a body that does not parse or validate, a timestamp out of range — is handed to the FastAPI app
unchanged (body replayed), so error answers, their messages and the OpenAPI spec stay FastAPI's.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import TypeAdapter

from mamori.detect.api.errors import error_status, replay_body
from mamori.detect.api.routers.score import event_rows, score_content
from mamori.detect.api.schemas import EventIn, ScoreBatchIn
from mamori.detect.service import ScoringService
from mamori.errors import MamoriError

__all__ = ["ScoreFastPath"]

_BODY = TypeAdapter(EventIn | ScoreBatchIn)
_PATH = "/v1/score"


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request says its body is JSON (FastAPI parses it as JSON then too)."""
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json"
    return False


class ScoreFastPath:
    """ASGI middleware: score valid ``POST /v1/score`` requests without FastAPI's per-request machinery.

    Parameters
    ----------
    app : ASGI app
        The FastAPI app (everything that is not a valid scoring request goes there).
    service : ScoringService
        The service the ``/v1/score`` route uses.
    """

    def __init__(self, app: Any, service: ScoringService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer a valid scoring request here; hand everything else to the app."""
        if scope["type"] != "http" or scope["path"] != _PATH or scope["method"] != "POST" \
                or not _is_json(scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        try:
            parsed = _BODY.validate_python(json.loads(body))
            rows = event_rows(parsed.events if isinstance(parsed, ScoreBatchIn) else [parsed])
        except Exception:  # noqa: BLE001 - not JSON / not valid: FastAPI answers it, as without this path
            await self.app(scope, replay_body(body, receive), send)
            return
        service = self.service
        try:
            result = await service.score_rows(rows)
        except MamoriError as exc:  # what the app's exception handler answers
            service.metrics.requests.labels(outcome="error").inc()
            await _send_json(send, error_status(exc), {"error": type(exc).__name__, "detail": str(exc)})
            return
        except Exception:
            service.metrics.requests.labels(outcome="error").inc()
            raise
        service.metrics.requests.labels(outcome="ok").inc()
        await _send_json(send, 200, score_content(service, result))
        service.metrics.latency.observe(time.perf_counter() - started)


async def _send_json(send: Any, status: int, content: object) -> None:
    """The bytes Starlette's ``JSONResponse`` would send."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
