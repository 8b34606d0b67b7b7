"""Distributed tracing in the sidecar: W3C and B3 propagation, spans, batched export.

``propagation.py`` reads and writes trace headers; ``tracer.py`` decides sampling and makes a span
per request (CLIENT on outbound listeners, SERVER on inbound ones); ``export.py`` sends finished
spans in batches from a background task to each collector (``zipkin.py``, ``otlp.py``).
"""
