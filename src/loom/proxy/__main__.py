"""``python -m loom.proxy``: the sidecar process itself, with nothing loaded it does not need.

``loom proxy`` checks its arguments and the snapshot, then replaces itself with this entry
point, so the sidecar does not carry the CLI's libraries in its memory.
"""

from loom.proxy.main import main

raise SystemExit(main())
