"""``loom check``: is the mesh healthy? Like ``linkerd check``: one line per check, ✔ / ‼ / ✖.

Each check is a small function of a ``Probe`` (how to reach the control plane, and what it
answered, fetched once) that returns a ``CheckResult``; rendering is separate (``render.py``).

| module | checks |
| --- | --- |
| ``trust`` | the trust bundle can be read; its roots are valid and not about to expire |
| ``plane`` | the control plane answers over HTTPS with a certificate the bundle verifies; its clock |
| ``proxies`` | every registered proxy is SYNCED (``/v1/proxy-status``) |
| ``identities`` | every registered workload's certificate is valid and renewed on time (``/v1/identities``) |
| ``run`` | the list of checks, in order, and running them |
"""
