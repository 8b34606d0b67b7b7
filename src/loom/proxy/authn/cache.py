"""Tokens already verified, by their bytes: a client that sends the same token again (the usual
case) costs a dict lookup and a clock check, not a signature check or a JSON decode.

One cache per compiled snapshot (a new snapshot may trust other keys), bounded as an LRU. Only
tokens that passed are kept; their time limits are checked again on every use.
"""

from __future__ import annotations

from collections import OrderedDict

CAPACITY = 1024
MAX_TOKEN_BYTES = 16 * 1024
"""Longer tokens are verified every time rather than cached (they would crowd the cache's memory)."""


class Verified:
    """What a verified token gave: the rule that accepted it, its principal and claims."""

    __slots__ = ("exp", "nbf", "payload", "principal", "rule")

    def __init__(self, rule: int, principal: str, payload: dict[str, object], exp: int, nbf: int) -> None:
        self.rule = rule
        self.principal = principal
        """``iss/sub``, Istio's request principal."""
        self.payload = payload
        """The token's claims; shared by every request that presents the token, never changed."""
        self.exp = exp
        self.nbf = nbf


class VerifiedTokens:
    __slots__ = ("_entries", "capacity")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, Verified] = OrderedDict()

    def get(self, token: bytes) -> Verified | None:
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
        return entry

    def put(self, token: bytes, entry: Verified) -> None:
        if len(token) > MAX_TOKEN_BYTES:
            return
        entries = self._entries
        entries[token] = entry
        entries.move_to_end(token)
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def discard(self, token: bytes) -> None:
        self._entries.pop(token, None)

    def __len__(self) -> int:
        return len(self._entries)
