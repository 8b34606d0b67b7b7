"""frontend: the bookstore's web page and JSON API; it owns no data and asks the other services.

    GET  /                the books, as an HTML page (JSON with ``Accept: application/json``)
    GET  /api/book/<id>   one book from catalog plus its reviews, and which catalog version answered
    POST /api/order       {"book_id": 1, "quantity": 2}, passed on to orders
    GET  /api/orders      the orders taken so far, from orders

Other services are called by name (``http://catalog/...``), as the app would in Kubernetes. The
request headers a mesh routes and traces by (``x-version``, ``traceparent``, ...) are copied onto
those calls, so ``x-version: canary`` sent to the frontend reaches catalog too.
"""

from __future__ import annotations

import html
import re
from typing import Any

from httpapp import (
    Reply,
    Request,
    Response,
    call,
    error,
    forwarded_headers,
    html_response,
    json_response,
    serve,
)

CATALOG = "http://catalog"
REVIEWS = "http://reviews"
ORDERS = "http://orders"


def propagated(request: Request) -> dict[str, str]:
    """The trace headers, and ``x-version`` (the canary's routing header), for the calls it causes."""
    return forwarded_headers(request, also=("x-version",))


def failed(service: str, reply: Reply) -> Response:
    """The frontend's answer when a service it needs did not give one (502), or said no."""
    if reply.error:
        return json_response({"error": f"{service} did not answer: {reply.error}"}, 502)
    return json_response({"error": f"{service} answered {reply.status}", "detail": reply.data}, reply.status)


def book_page(request: Request, book_id: int) -> Response:
    headers = propagated(request)
    catalog = call(f"{CATALOG}/books/{book_id}", headers=headers)
    if catalog.status != 200:
        return failed("catalog", catalog)
    reviews = call(f"{REVIEWS}/reviews/{book_id}", headers=headers, timeout=5.0)
    result: dict[str, Any] = {
        "book": catalog.data["book"],
        "catalog_version": catalog.data["version"],
        "catalog_served_by": catalog.data["served_by"],
    }
    if reviews.status == 200:
        result["reviews"] = reviews.data["reviews"]
    else:  # the page still works without reviews: say why they are missing
        result["reviews"] = None
        result["reviews_error"] = reviews.error or f"reviews answered {reviews.status}"
    return json_response(result)


def home(request: Request) -> Response:
    catalog = call(f"{CATALOG}/books", headers=propagated(request))
    if catalog.status != 200:
        return failed("catalog", catalog)
    if "application/json" in request.headers.get("accept", ""):
        return json_response(catalog.data)
    rows = "".join(
        f"<tr><td>{book['id']}</td><td>{html.escape(book['title'])}</td>"
        f"<td>{html.escape(book['author'])}</td><td>${book['price_usd']:.2f}</td>"
        f"<td>{'€{:.2f}'.format(book['price_eur']) if 'price_eur' in book else ''}</td></tr>"
        for book in catalog.data["books"]
    )
    served_by = html.escape(catalog.data["served_by"])
    return html_response(
        "<!doctype html><html><head><meta charset='utf-8'><title>Loom bookstore</title></head><body>"
        "<h1>Loom bookstore</h1>"
        "<table border='1' cellpadding='4'><tr><th>#</th><th>title</th><th>author</th>"
        f"<th>price</th><th>price (EUR)</th></tr>{rows}</table>"
        f"<p>This list came from <b>{served_by}</b>. Reload to see the canary split at work.</p>"
        "<p>JSON: <code>/api/book/1</code>, <code>/api/orders</code></p></body></html>\n"
    )


def handle(request: Request) -> Response:
    match = re.fullmatch(r"/api/book/(\d+)", request.path)
    if request.method == "GET" and match:
        return book_page(request, int(match[1]))
    if request.method == "GET" and request.path == "/":
        return home(request)
    if request.method == "POST" and request.path == "/api/order":
        try:
            order = request.json()
        except ValueError:
            return error(400, 'send JSON like {"book_id": 1, "quantity": 2}')
        reply = call(f"{ORDERS}/orders", "POST", order, headers=propagated(request))
        return json_response(reply.data, reply.status) if reply.status else failed("orders", reply)
    if request.method == "GET" and request.path == "/api/orders":
        reply = call(f"{ORDERS}/orders", headers=propagated(request))
        return json_response(reply.data, reply.status) if reply.status else failed("orders", reply)
    return error(404, "try /, /api/book/<id>, POST /api/order or /api/orders")


if __name__ == "__main__":
    serve("frontend", handle, default_port=8080)
