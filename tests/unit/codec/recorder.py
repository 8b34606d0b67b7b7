"""Sinks that record what the codecs report, and helpers to feed them whole or in pieces."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.head import RequestHead, ResponseHead
from loom.proxy.codec.request_parser import ParserLimits, RequestParser, UpgradeRequested
from loom.proxy.codec.response_parser import ResponseParser


@dataclass
class Request:
    head: RequestHead
    body: bytes = b""
    complete: bool = False


@dataclass
class RequestRecorder:
    """A RequestSink keeping each request's head, joined body and whether it completed."""

    requests: list[Request] = field(default_factory=list)

    def on_request(self, head: RequestHead) -> None:
        self.requests.append(Request(head))

    def on_body(self, chunk: bytes) -> None:
        assert chunk, "the parser never reports an empty body chunk"
        self.requests[-1].body += chunk

    def on_request_complete(self) -> None:
        self.requests[-1].complete = True


@dataclass
class RequestOutcome:
    """What feeding some bytes produced: the requests, and how parsing stopped (if it did)."""

    requests: list[Request]
    error: ProtocolError | None = None
    upgrade_rest: bytes | None = None

    @property
    def status(self) -> int | None:
        return self.error.status if self.error is not None else None

    def summary(self) -> list[tuple[object, ...]]:
        """Everything observable, in a form two outcomes can be compared with ``==``."""
        out: list[tuple[object, ...]] = [
            (
                r.head.method,
                r.head.target,
                r.head.scheme,
                r.head.path,
                r.head.query,
                r.head.authority,
                r.head.port,
                r.head.version,
                tuple(r.head.headers),
                r.head.keep_alive,
                r.head.content_length,
                r.head.chunked,
                r.head.upgrade,
                r.body,
                r.complete,
            )
            for r in self.requests
        ]
        out.append(("error", self.status))
        return out


def parse_requests(
    pieces: bytes | Iterable[bytes], limits: ParserLimits | None = None, *, upgrade_rest_joined: bool = False
) -> RequestOutcome:
    """Feed ``pieces`` (or one bytes object) to a fresh RequestParser; stop at an error or upgrade."""
    recorder = RequestRecorder()
    parser = RequestParser(recorder, limits or ParserLimits())
    chunks = [pieces] if isinstance(pieces, bytes) else list(pieces)
    for i, chunk in enumerate(chunks):
        try:
            parser.feed(chunk)
        except ProtocolError as error:
            return RequestOutcome(recorder.requests, error=error)
        except UpgradeRequested as upgrade:
            rest = upgrade.rest + b"".join(chunks[i + 1 :]) if upgrade_rest_joined else upgrade.rest
            return RequestOutcome(recorder.requests, upgrade_rest=rest)
    return RequestOutcome(recorder.requests)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (duplicates and out-of-range offsets ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@dataclass
class ResponseRecorder:
    """A ResponseSink recording events in order: ("head", ResponseHead), ("body", b), ("end",)."""

    events: list[tuple[object, ...]] = field(default_factory=list)

    def on_response(self, head: ResponseHead) -> None:
        self.events.append(("head", head))

    def on_response_body(self, chunk: bytes) -> None:
        self.events.append(("body", chunk))

    def on_response_complete(self) -> None:
        self.events.append(("end",))

    @property
    def heads(self) -> list[ResponseHead]:
        return [e[1] for e in self.events if e[0] == "head"]  # type: ignore[misc]

    def shape(self) -> list[object]:
        """Events with heads as their status and adjacent body chunks joined."""
        out: list[object] = []
        for event in self.events:
            if event[0] == "head":
                out.append(event[1].status)  # type: ignore[attr-defined]
            elif event[0] == "body":
                if out and isinstance(out[-1], bytes):
                    out[-1] += event[1]  # type: ignore[operator]
                else:
                    out.append(event[1])
            else:
                out.append("end")
        return out


def response_parser() -> tuple[ResponseParser, ResponseRecorder]:
    recorder = ResponseRecorder()
    return ResponseParser(recorder), recorder
