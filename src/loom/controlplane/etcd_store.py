"""etcd as the store, so that several control-plane replicas serve one configuration.

``loom controlplane --store etcd://HOST:PORT[,HOST:PORT...][/ROOT]``. Each resource is one key,
``ROOT/resources/<kind>/<namespace>/<name>`` (ROOT defaults to ``/loom``), whose value is the
resource's YAML document. At start every key under the prefix is read; then the prefix is
watched, and every change — from this replica, another one, or ``etcdctl`` — loads the whole set
again and hands it to ``on_change``, like the folder store does after an edit.

Same rule as the folder store: if any key does not load (YAML, schema, or a document that does
not match its key), the change is refused with its problems (``last_error``) and the last good
set stays in force; at start, nothing good means the control plane does not start.

``apply(yaml_text)`` writes every document of a text in one transaction, ``delete`` removes one
key; both only write to etcd, and the change takes effect through the watch, on every replica
alike. ``sources`` (key → YAML text) gives the documents in force, as the folder store does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loom.api import LoadProblem, Resource, load_text
from loom.controlplane.etcd_client import Backoff, EtcdClient, EtcdCompacted, EtcdError, Event, KeyValue
from loom.controlplane.store import APPLY_SOURCE, one_per_document

log = logging.getLogger("loom.controlplane")

SCHEME = "etcd://"
DEFAULT_PORT = 2379
DEFAULT_ROOT = "/loom"


class BadStoreURL(ValueError):
    """A ``--store`` URL that cannot be used."""


@dataclass(frozen=True)
class EtcdLocation:
    endpoints: tuple[str, ...]
    """``http://host:port`` of each etcd member."""
    root: str = DEFAULT_ROOT

    @property
    def prefix(self) -> str:
        return f"{self.root}/resources/"

    def key(self, kind: str, namespace: str, name: str) -> str:
        return f"{self.prefix}{kind}/{namespace}/{name}"

    def __str__(self) -> str:
        hosts = ",".join(e.removeprefix("http://") for e in self.endpoints)
        return f"{SCHEME}{hosts}{'' if self.root == DEFAULT_ROOT else self.root}"


def parse_store_url(url: str) -> EtcdLocation:
    """``etcd://HOST[:PORT][,HOST[:PORT]...][/ROOT]`` → endpoints and key root."""
    if not url.startswith(SCHEME):
        raise BadStoreURL(f"{url!r}: a store URL starts with {SCHEME} (e.g. {SCHEME}127.0.0.1:2379)")
    rest = url[len(SCHEME) :]
    hosts, slash, root = rest.partition("/")
    root = "/" + root.strip("/") if slash and root.strip("/") else DEFAULT_ROOT
    endpoints = []
    for item in hosts.split(","):
        host, port = _host_port(item.strip(), url)
        endpoints.append(f"http://{host}:{port}")
    return EtcdLocation(tuple(endpoints), root)


def _host_port(item: str, url: str) -> tuple[str, int]:
    if not item:
        raise BadStoreURL(f"{url!r}: no host (e.g. {SCHEME}127.0.0.1:2379)")
    if item.startswith("["):  # [::1]:2379
        host, _, after = item.partition("]")
        host += "]"
        port_text = after.removeprefix(":")
    elif item.count(":") == 1:
        host, port_text = item.split(":")
    else:
        host, port_text = item, ""
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise BadStoreURL(f"{url!r}: {port_text!r} is not a port number") from None
    if not 0 < port < 65536 or host in ("", "[]"):
        raise BadStoreURL(f"{url!r}: {item!r} is not HOST:PORT")
    return host, port


@dataclass(frozen=True)
class _Entry:
    """One key as last read: its resource, or the problems that kept it from loading."""

    mod_revision: int
    text: str
    resource: Resource | None
    problems: tuple[LoadProblem, ...]


class EtcdStore:
    def __init__(
        self,
        location: EtcdLocation | str,
        on_change: Callable[[list[Resource]], None],
        *,
        client: EtcdClient | None = None,
    ) -> None:
        self.location = parse_store_url(location) if isinstance(location, str) else location
        self.on_change = on_change
        self.client = client or EtcdClient(self.location.endpoints)
        self.resources: list[Resource] = []
        self.last_error: str | None = None
        self.sources: dict[str, str] = {}
        """Key → YAML text of the resources in force: enough for a client to load exactly the
        same resources, key:line included (``GET /v1/resources?sources=1``)."""
        self.revision = 0
        """The etcd revision the entries reflect."""
        self._entries: dict[str, _Entry] = {}

    def describe(self) -> str:
        return str(self.location)

    # reading -----------------------------------------------------------------------------

    async def open(self) -> bool:
        """Read every key under the prefix (``EtcdError`` when etcd cannot be reached)."""
        await self._read_all()
        return self._apply()

    async def watch(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async for events in self.client.watch_prefix(self.location.prefix, self.revision + 1):
                    self._take(events)
                    self._apply()
                    backoff.reset()
            except EtcdCompacted as exc:
                log.warning("etcd watch: %s; reading every resource again", exc)
            while True:  # compacted: read everything, then watch from there
                try:
                    await self._read_all()
                except EtcdError as exc:
                    log.warning("cannot read %s: %s; retrying", self.describe(), exc)
                    await asyncio.sleep(backoff.next())
                    continue
                self._apply()
                break

    async def _read_all(self) -> None:
        found = await self.client.get_prefix(self.location.prefix)
        entries: dict[str, _Entry] = {}
        for kv in found.kvs:
            old = self._entries.get(kv.key)
            if old is not None and old.mod_revision == kv.mod_revision:
                entries[kv.key] = old  # unchanged: not loaded again
            else:
                entries[kv.key] = self._entry(kv)
        self._entries = entries
        self.revision = found.revision

    def _take(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.type == "DELETE":
                self._entries.pop(event.key, None)
            else:
                self._entries[event.key] = self._entry(KeyValue(event.key, event.value, event.revision))
            self.revision = max(self.revision, event.revision)

    def _entry(self, kv: KeyValue) -> _Entry:
        resource, problems = self.load_value(kv.key, kv.value)
        text = kv.value.decode("utf-8-sig", "replace")
        return _Entry(kv.mod_revision, text, resource, tuple(problems))

    def load_value(self, key: str, value: bytes) -> tuple[Resource | None, list[LoadProblem]]:
        """One key's resource, or why it does not load."""
        prefix = self.location.prefix
        parts = key.removeprefix(prefix).split("/")
        if not key.startswith(prefix) or len(parts) != 3 or not all(parts):
            message = f"a key under {prefix} must be {prefix}<kind>/<namespace>/<name>"
            hint = "delete the key, and write the resource with `loom apply` (or under its proper key)"
            return None, [_problem(key, 0, None, message, hint)]
        try:
            text = value.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None, [_problem(key, 0, None, "the value is not UTF-8 text", "write the YAML as UTF-8")]
        result = load_text(text, key)
        if result.problems:
            return None, result.problems
        kind, namespace, name = parts
        ref = f"{kind} {namespace}/{name}"
        if len(result.resources) != 1:
            what = "no resource" if not result.resources else f"{len(result.resources)} resources"
            hint = "put exactly one YAML document under each key"
            return None, [_problem(key, 1, ref, f"the value holds {what}", hint)]
        resource = result.resources[0]
        if (resource.kind, resource.namespace, resource.name) != (kind, namespace, name):
            proper = self.location.key(resource.kind, resource.namespace, resource.name)
            return None, [
                _problem(
                    key,
                    resource.source.line,
                    ref,
                    f"the document is {resource.kind} {resource.namespace}/{resource.name}, "
                    "not what its key names",
                    f"put it under {proper}, or make its kind, metadata.namespace and metadata.name "
                    "match the key",
                )
            ]
        return resource, []

    def _apply(self) -> bool:
        """Hand the set to ``on_change`` if every key loads; else refuse it (``last_error``)."""
        keys = sorted(self._entries)
        problems = [p for key in keys for p in self._entries[key].problems]
        if problems:
            error = "\n".join(str(p) for p in problems)
            if error != self.last_error:
                log.error("configuration refused; the last good one stays in force:\n%s", error)
            self.last_error = error
            return False
        self.last_error = None
        self.resources = [e.resource for key in keys if (e := self._entries[key]).resource is not None]
        self.sources = {key: self._entries[key].text for key in keys}
        self.on_change(self.resources)
        return True

    # writing -----------------------------------------------------------------------------

    async def apply(self, yaml_text: str, source_name: str = APPLY_SOURCE) -> list[Resource]:
        """Write every resource of ``yaml_text`` under its key (the document as written, comments
        included), in one transaction. Nothing is written if any document does not load
        (``ApplyRefused``, with file:line problems)."""
        found = one_per_document(yaml_text, source_name)
        await self.client.put_many({self.location.key(*r.key): text for r, text in found})
        log.info("applied %s", ", ".join(r.ref for r, _ in found))
        return [r for r, _ in found]

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        deleted = await self.client.delete(self.location.key(kind, namespace, name))
        if deleted:
            log.info("deleted %s %s/%s", kind, namespace, name)
        return deleted

    async def close(self) -> None:
        await self.client.close()


def _problem(file: str, line: int, ref: str | None, message: str, hint: str) -> LoadProblem:
    return LoadProblem(file, line, ref, "", message, hint)
