"""orders: takes orders and remembers them (in memory: a restart forgets them).

    POST /orders   {"book_id": 1, "quantity": 2}  → 201 with the order and the count so far
    GET  /orders   every order taken, and how many

Nothing here checks who is calling: in the mesh, the AuthorizationPolicy in orders-authz.yaml
lets only the frontend's identity through, and the sidecar answers 403 to anyone else.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from httpapp import Request, Response, error, json_response, serve

orders: list[dict[str, Any]] = []
lock = threading.Lock()  # requests are handled on several threads


def take_order(request: Request) -> Response:
    try:
        data = request.json()
        book_id, quantity = int(data["book_id"]), int(data.get("quantity", 1))
    except (ValueError, TypeError, KeyError):
        return error(400, 'send JSON like {"book_id": 1, "quantity": 2}')
    if quantity < 1:
        return error(400, "quantity must be at least 1")
    with lock:
        order = {"order_id": len(orders) + 1, "book_id": book_id, "quantity": quantity, "at": time.time()}
        orders.append(order)
        count = len(orders)
    return json_response({"order": order, "orders_taken": count}, 201)


def handle(request: Request) -> Response:
    if request.path != "/orders":
        return error(404, "try GET or POST /orders")
    if request.method == "POST":
        return take_order(request)
    if request.method == "GET":
        with lock:
            return json_response({"orders_taken": len(orders), "orders": list(orders)})
    return error(405, "use GET or POST")


if __name__ == "__main__":
    serve("orders", handle, default_port=9100)
