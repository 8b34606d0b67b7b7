"""``JwksCache``: the key sets of RequestAuthentication ``jwksUri``s, fetched by the control plane.

As istiod does by default, the control plane (not each sidecar) fetches every ``jwksUri`` the
RequestAuthentications name and writes the key set into the snapshots, so a sidecar never reaches
out to an identity provider. Each URI is fetched when it first appears, then every 20 minutes
(Istio's default refresh). A failed fetch is retried sooner — after a minute, doubling up to the
refresh interval — and keeps the last good copy; while there is none the compiler gives the rule
an empty key set (every token of that issuer refused) and a warning naming the error.

The compiler reads ``documents`` and ``errors`` synchronously through ``MeshInputs.build``; when a
key set arrives or changes, ``on_change`` (the push engine's ``schedule``) makes a recompile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping

import aiohttp

log = logging.getLogger("loom.controlplane")

REFRESH_SECONDS = 20 * 60.0
RETRY_SECONDS = 60.0
DEFAULT_TIMEOUT = 5.0
MAX_BYTES = 1024 * 1024
"""A key set larger than this is refused (a real one is a few KB)."""


class JwksFetchError(Exception):
    pass


class JwksCache:
    def __init__(
        self,
        *,
        refresh: float = REFRESH_SECONDS,
        retry: float = RETRY_SECONDS,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.refresh = refresh
        self.retry = retry
        self.on_change = on_change
        self.documents: dict[str, str] = {}
        """URI → the JWKS text last fetched from it (kept when a later fetch fails)."""
        self.errors: dict[str, str] = {}
        """URI → why its last fetch failed; absent once a fetch succeeds."""
        self._timeouts: dict[str, float] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def want(self, uris: Mapping[str, float]) -> None:
        """Keep exactly ``uris`` (URI → fetch timeout in seconds) fresh: start fetching the new ones,
        stop and forget the ones no longer named. Needs a running event loop."""
        for uri in list(self._tasks):
            if uri not in uris or self._timeouts.get(uri) != uris[uri]:
                self._tasks.pop(uri).cancel()
                if uri not in uris:
                    self.documents.pop(uri, None)
                    self.errors.pop(uri, None)
                    self._timeouts.pop(uri, None)
        for uri, timeout in uris.items():
            if uri not in self._tasks:
                self._timeouts[uri] = timeout
                self._tasks[uri] = asyncio.get_running_loop().create_task(self._keep_fresh(uri, timeout))

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _keep_fresh(self, uri: str, timeout: float) -> None:
        backoff = self.retry
        while True:
            try:
                text = await self.fetch(uri, timeout)
            except JwksFetchError as exc:
                self.errors[uri] = str(exc)
                log.warning("fetching the JWKS at %s failed: %s", uri, exc)
                wait = min(backoff, self.refresh)
                backoff *= 2
            else:
                self.errors.pop(uri, None)
                backoff = self.retry
                wait = self.refresh
                if self.documents.get(uri) != text:
                    self.documents[uri] = text
                    log.info("fetched the JWKS at %s", uri)
                    if self.on_change is not None:
                        self.on_change()
            await asyncio.sleep(wait)

    async def fetch(self, uri: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The key set at ``uri`` as text; JwksFetchError with a reason a person can act on."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(
                uri, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=True
            ) as response:
                if response.status != 200:
                    raise JwksFetchError(f"HTTP {response.status}")
                body = await response.content.read(MAX_BYTES + 1)
        except TimeoutError:
            raise JwksFetchError(f"no answer within {timeout:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise JwksFetchError(str(exc) or type(exc).__name__) from None
        if len(body) > MAX_BYTES:
            raise JwksFetchError(f"larger than {MAX_BYTES} bytes")
        try:
            text = body.decode()
            document = json.loads(text)
        except ValueError:
            raise JwksFetchError("the answer is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksFetchError('the answer is not a JSON Web Key Set (an object with a "keys" array)')
        return text
