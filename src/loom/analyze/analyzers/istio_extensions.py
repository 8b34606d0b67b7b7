"""LM1101: a field Istio does not have, which Loom accepts.

Operators write a few fields that look like Istio's but are not (they appear in tutorials and
seed examples). Loom accepts them and gives them the meaning their author expected, but Istio
would reject or ignore them, so the same YAML would behave differently under Istio. The loader
lists them (``Resource.extensions``, with a note on each); this analyzer reports each as a
Warning naming what Istio uses instead:

| field | Istio's way |
| --- | --- |
| DestinationRule ``trafficPolicy.retryPolicy`` | VirtualService route ``retries`` (``http[].retries``) |
| DestinationRule ``trafficPolicy.connectionPool.http.pendingRequests`` | ``http1MaxPendingRequests`` |
"""

from __future__ import annotations

from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding

NOT_ISTIO = Code(
    "LM1101", Level.WARNING, "field Istio does not have (Loom accepts it; Istio would not honour it)"
)
CODES = (NOT_ISTIO,)

# The last name of an extension field's path → how to write it Istio's way.
_ISTIO_WAY = {
    "retryPolicy": (
        "move the retries to the VirtualService routes for this host (http[].retries: attempts, "
        "perTryTimeout, retryOn), which Istio and Loom both honour"
    ),
    "pendingRequests": "rename it to http1MaxPendingRequests, Istio's name for the same limit",
}


def run(ctx: Context) -> Iterator[Finding]:
    for resource in ctx.resources:
        for path in resource.extensions:
            name = path.rsplit(".", 1)[-1]
            note = resource.extension_notes.get(path, "")
            message = f"`{name}` is not an Istio field, so Istio would not honour it: {note}"
            fix = _ISTIO_WAY.get(
                name, "write the Istio field the note names, so the YAML means the same under Istio"
            )
            yield finding(NOT_ISTIO, resource, path, message, fix)
