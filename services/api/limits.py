"""Refuse oversized requests before reading them, so one upload cannot fill memory or disk."""

import logging
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response

logger = logging.getLogger(__name__)

MB = 1024 * 1024


def too_large_sentence(size: int, limit: int, what: str) -> str:
    return f"{what} too large: {size / MB:.1f} MB, limit {limit / MB:.1f} MB"


class RequestTooLargeError(HTTPException):
    """A chunked body grew past the limit while being read (FastAPI re-raises HTTPExceptions
    from body parsing, so this reaches the JSON error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request too large: over the limit of {limit / MB:.1f} MB")


class RequestSizeLimit:
    """Pure ASGI middleware: a declared Content-Length over the limit gets 413 before any byte is
    read; a body without one (chunked) is counted as it arrives."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        # (method, path) -> its own limit, for the routes that take large uploads.
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = (scope.get("method", ""), scope.get("path", ""))
        max_bytes = self.overrides.get(route, self.default_max_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, "the Content-Length header is not a number")(scope, receive, send)
                return
            if int(declared) > max_bytes:
                logger.warning("refused a %d-byte request to %s", int(declared), scope.get("path"))
                detail = too_large_sentence(int(declared), max_bytes, "request")
                await error_response(413, detail, {"Connection": "close"})(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    logger.warning(
                        "refused a chunked request to %s past %d bytes", scope.get("path"), received
                    )
                    raise RequestTooLargeError(max_bytes)
            return message

        await self.app(scope, counting_receive, send)
