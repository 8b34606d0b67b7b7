"""The mesh dashboard: a web UI served by the control plane on 127.0.0.1 (``--dashboard-port``).

It holds no state of its own: its JSON is the control plane's HTTPS API, forwarded
(``forward.py``), plus one view computed from it, the resources that apply to each service
(``config_view.py``). The UI is static files (``static/``): plain JavaScript modules, SVG and CSS,
no external library and no network access beyond the dashboard itself. See docs/dashboard.md.
"""
