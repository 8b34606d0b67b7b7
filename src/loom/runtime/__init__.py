"""Running a mesh on this machine: ``loom up`` / ``down`` / ``status`` / ``run`` (docs/runtime.md).

The control plane, every sidecar and every app are separate processes started here; nothing of
``loom.proxy`` is imported (a sidecar is ``python -m loom.proxy``).

| module | does |
| --- | --- |
| ``plan`` | reads a mesh folder: its resources and the replicas its Workloads ask for |
| ``addresses`` | loopback addresses (127.0.0.N) and free ports |
| ``children`` | starting a process with its log file, and stopping it (SIGTERM, bounded wait, SIGKILL) |
| ``plane_client`` | the control plane's HTTPS API: join tokens, proxy status |
| ``appenv`` | the environment every app gets (HOST, PORT, HTTP_PROXY, ...) |
| ``sidecar`` | a sidecar's command line and readiness |
| ``state`` | the state file (``<DIR>/.loom/mesh.json``) that ``down``/``status``/``run`` read |
| ``mesh`` | bringing a whole mesh up in order and down in order |
| ``supervisor`` | the background process of ``loom up --detach`` |
| ``join`` | ``loom run``: one command with its own sidecar |
| ``summary`` | the services table printed once the mesh is up |
"""
