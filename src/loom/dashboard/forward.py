"""The dashboard's ``/api/v1/...``: GETs forwarded to the control plane's HTTPS API.

The control plane is verified with the trust bundle of its state directory (``root-cert.pem``);
the routes that need the operator token (``tap``) get it, read from the state directory
(``operator-token``) at each call. Answers are streamed through as they come (``tap`` is
newline-delimited JSON that lasts as long as the session), never buffered whole.
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger("loom.dashboard")

BUNDLE = "root-cert.pem"
OPERATOR_TOKEN = "operator-token"
OPERATOR_ROUTES = frozenset({"tap"})
"""The API's read routes that need the operator's bearer token (the first path segment)."""
STREAMING_ROUTES = frozenset({"tap", "top"})
"""Routes whose answer may take long: no read timeout."""
QUERY_TIMEOUT = 30.0
PASSED_HEADERS = ("Content-Type",)


class Forwarder:
    """One client session to the control plane at ``api_url`` (``https://HOST:PORT``)."""

    def __init__(self, api_url: str, state_dir: Path) -> None:
        self.api_url = api_url.rstrip("/")
        self.state_dir = state_dir
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            context = ssl.create_default_context(cafile=str(self.state_dir / BUNDLE))
            connector = aiohttp.TCPConnector(ssl=context, limit=32)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, route: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if route in OPERATOR_ROUTES:
            try:
                token = (self.state_dir / OPERATOR_TOKEN).read_text().strip()
            except OSError:
                token = ""
            if token:
                headers["Authorization"] = f"Bearer {token}"
        return headers

    def _timeout(self, route: str) -> aiohttp.ClientTimeout:
        if route in STREAMING_ROUTES:
            return aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=None)
        return aiohttp.ClientTimeout(total=QUERY_TIMEOUT, sock_connect=5.0)

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """``GET /v1/<path>`` decoded; raises ``ApiError`` unless 200."""
        route = path.split("/", 1)[0]
        try:
            async with self.session.get(
                f"{self.api_url}/v1/{path}",
                params=params or {},
                headers=self._headers(route),
                timeout=self._timeout(route),
            ) as upstream:
                text = await upstream.text()
                if upstream.status != 200:
                    raise ApiError(upstream.status, text)
                return json.loads(text)
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            raise ApiError(502, f"the control plane cannot be reached: {exc}") from None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v1/<tail>?<query>`` → ``GET <api>/v1/<tail>?<query>``, streamed back."""
        tail = request.match_info["tail"]
        route = tail.split("/", 1)[0]
        url = f"{self.api_url}/v1/{tail}"
        try:
            async with self.session.get(
                url, params=request.query, headers=self._headers(route), timeout=self._timeout(route)
            ) as upstream:
                response = web.StreamResponse(status=upstream.status)
                for name in PASSED_HEADERS:
                    if name in upstream.headers:
                        response.headers[name] = upstream.headers[name]
                response.headers["Cache-Control"] = "no-store"
                await response.prepare(request)
                try:
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.debug("the control plane's answer to %s broke off: %s", url, exc)
                    return response  # the status is sent: the browser sees a cut-off body
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            log.debug("forwarding %s failed: %s", url, exc)
            return json_error(502, f"the control plane cannot be reached: {exc}")


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:200]}")
        self.status = status
        self.text = text


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})
