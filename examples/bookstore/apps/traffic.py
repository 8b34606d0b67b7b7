"""traffic: a steady stream of shoppers, tallying which catalog version answered them.

Calls ``$TRAFFIC_URL`` (default ``http://frontend/api/book/<id>``, the id cycling over the books)
at ``TRAFFIC_RPS`` requests a second (default 10) and, every ``TRAFFIC_WINDOW`` requests
(default 100), prints the split it saw in that window:

    traffic: requests 101-200: catalog v1 89 (89.0%)  v2 11 (11.0%)  failed 0

``TRAFFIC_REQUESTS`` requests in all (default 600, then a final tally and exit 0), or, when it is
0, forever until SIGTERM or Ctrl-C (then the final tally and exit 0). The bookstore's Workload
sets 0, so the tally keeps moving while you edit the canary weights. It listens on no port:
a client, like a browser.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from types import FrameType

from httpapp import call

URL = os.environ.get("TRAFFIC_URL", "http://frontend/api/book/{id}")
RPS = float(os.environ.get("TRAFFIC_RPS", "10"))
REQUESTS = int(os.environ.get("TRAFFIC_REQUESTS", "600"))
WINDOW = int(os.environ.get("TRAFFIC_WINDOW", "100"))
BOOK_IDS = (1, 2, 3, 4, 5)

stopping = threading.Event()


def one_request(n: int) -> str:
    """Make request ``n``; what to count it as: ``v1``, ``v2``, ... or ``failed <why>``."""
    reply = call(URL.format(id=BOOK_IDS[n % len(BOOK_IDS)]))
    if reply.error:
        return "failed (no answer)"
    if reply.status != 200:
        return f"failed ({reply.status})"
    if isinstance(reply.data, dict) and "catalog_version" in reply.data:
        return str(reply.data["catalog_version"])
    return "ok (no catalog version)"


def tally(label: str, counts: Counter[str]) -> str:
    total = sum(counts.values()) or 1
    versions = sorted(k for k in counts if not k.startswith("failed"))
    failures = sorted(k for k in counts if k.startswith("failed"))
    parts = [f"{k} {counts[k]} ({100 * counts[k] / total:.1f}%)" for k in versions]
    parts += [f"{k} {counts[k]}" for k in failures] or ["failed 0"]
    return f"traffic: {label}: catalog " + "  ".join(parts)


def stop(signum: int, _frame: FrameType | None) -> None:
    stopping.set()


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = f"{REQUESTS} requests" if REQUESTS else "until stopped"
    print(f"traffic: calling {URL.replace('{id}', '<id>')} at {RPS:g}/s, {bound}", flush=True)
    total: Counter[str] = Counter()
    window: Counter[str] = Counter()
    start = time.monotonic()
    n = 0
    while not stopping.is_set() and (REQUESTS == 0 or n < REQUESTS):
        # Keep to the rate: request n is due n/RPS seconds after the start.
        if stopping.wait(max(0.0, start + n / RPS - time.monotonic())):
            break
        outcome = one_request(n)
        n += 1
        total[outcome] += 1
        window[outcome] += 1
        if n % WINDOW == 0:
            print(tally(f"requests {n - WINDOW + 1}-{n}", window), flush=True)
            window.clear()
    print(tally(f"all {n} requests", total), flush=True)


if __name__ == "__main__":
    main()
