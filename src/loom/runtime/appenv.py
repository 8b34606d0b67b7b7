"""The environment every app of a local mesh gets (docs/runtime.md, "The env contract")."""

from __future__ import annotations

import os
from collections.abc import Mapping

NO_PROXY = "localhost,127.0.0.1"


def app_env(
    *,
    address: str,
    port: int,
    outbound_port: int,
    workload: str,
    namespace: str,
    extra: Mapping[str, str],
    base: Mapping[str, str] | None = None,
    transparent: bool = False,
) -> dict[str, str]:
    """``base`` (default: this process's environment) with the mesh's variables, then ``extra``
    (the Workload's ``spec.env``, which wins). Transparent mode sets no proxy: iptables sends the
    app's connections to its sidecar."""
    env = dict(os.environ if base is None else base)
    for name in ("LOOM_JOIN_TOKEN", "LOOM_OPERATOR_TOKEN", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env.update(
        {
            "HOST": address,
            "LOOM_WORKLOAD": workload,
            "LOOM_NAMESPACE": namespace,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if transparent:
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
            env.pop(name, None)
    else:
        proxy = f"http://127.0.0.1:{outbound_port}"
        env.update({"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": NO_PROXY, "no_proxy": NO_PROXY})
    if port:
        env["PORT"] = str(port)
    else:
        env.pop("PORT", None)
    env.update(extra)
    return env
