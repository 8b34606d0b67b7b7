"""Redirect responses (Istio ``redirect``): a status and an absolute Location.

Each part of the Location comes from the configuration when set, else from the request:

- scheme: ``redirect.scheme``, else the request's (``http`` for origin-form requests);
- host and port: ``redirect.authority`` replaces both (a port in it included); ``redirect.port``
  then replaces the port. When only the scheme changes, a port that was the old scheme's default
  is dropped (``http://a:80/`` → ``https://a/``). A port equal to the final scheme's default is
  never written.
- path: ``redirect.uri`` replaces the whole path whatever the match; the request's query is kept
  unless ``redirect.uri`` carries its own ``?query`` (Envoy's ``path_redirect``).
"""

from __future__ import annotations

from loom.proxy.codec.head import RequestHead

_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class CompiledRedirect:
    __slots__ = ("code", "host", "host_port", "port", "scheme", "uri", "uri_has_query")

    def __init__(
        self,
        *,
        code: int = 301,
        scheme: bytes | None = None,
        host: bytes | None = None,
        host_port: int | None = None,
        port: int | None = None,
        uri: bytes | None = None,
    ) -> None:
        self.code = code
        self.scheme = scheme
        self.host = host
        self.host_port = host_port
        self.port = port
        self.uri = uri
        self.uri_has_query = uri is not None and b"?" in uri

    def location(self, head: RequestHead) -> tuple[int, bytes]:
        request_scheme = head.scheme or b"http"
        scheme = self.scheme if self.scheme is not None else request_scheme
        if self.host is not None:
            host, port = self.host, self.host_port
        else:
            host, port = head.authority, head.port
            if scheme != request_scheme and port == _DEFAULT_PORTS.get(request_scheme):
                port = None
        if self.port is not None:
            port = self.port
        if port is not None and port == _DEFAULT_PORTS.get(scheme):
            port = None
        uri = self.uri
        if uri is None:
            target = head.path + b"?" + head.query if head.query else head.path
        elif self.uri_has_query or not head.query:
            target = uri
        else:
            target = uri + b"?" + head.query
        if port is None:
            return self.code, b"%s://%s%s" % (scheme, host, target)
        return self.code, b"%s://%s:%d%s" % (scheme, host, port, target)

    def __repr__(self) -> str:
        return (
            f"<CompiledRedirect {self.code} scheme={self.scheme!r} host={self.host!r}:{self.host_port} "
            f"port={self.port} uri={self.uri!r}>"
        )
