"""catalog: the books the store sells.

    GET /books        every book
    GET /books/<id>   one book (404 if there is none)

One program, two versions: ``CATALOG_VERSION=v1`` (the default) or ``v2``. Version 2 adds the price
in euros, so a canary is easy to spot in any answer. Every answer says which version and which
instance (address:port) served it, in the body and in the ``x-catalog-version`` header.
"""

from __future__ import annotations

import os
import re
from typing import Any

from httpapp import Request, Response, error, json_response, serve

VERSION = os.environ.get("CATALOG_VERSION", "v1")
INSTANCE = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '9080')}"
EUR_PER_USD = 0.92

BOOKS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "title": "The Pragmatic Programmer", "author": "Hunt & Thomas", "price_usd": 39.99},
    2: {"id": 2, "title": "Designing Data-Intensive Applications", "author": "Kleppmann", "price_usd": 44.50},
    3: {"id": 3, "title": "Site Reliability Engineering", "author": "Beyer et al.", "price_usd": 35.00},
    4: {"id": 4, "title": "The Mythical Man-Month", "author": "Brooks", "price_usd": 29.95},
    5: {"id": 5, "title": "Release It!", "author": "Nygard", "price_usd": 41.00},
}


def present(book: dict[str, Any]) -> dict[str, Any]:
    """A book as this version shows it: v2 adds ``price_eur``."""
    if VERSION == "v2":
        return {**book, "price_eur": round(book["price_usd"] * EUR_PER_USD, 2)}
    return dict(book)


def handle(request: Request) -> Response:
    if request.method != "GET":
        return error(405, "catalog is read-only: use GET")
    about = {"version": VERSION, "served_by": f"catalog {VERSION} at {INSTANCE}"}
    headers = {"x-catalog-version": VERSION}
    if request.path == "/books":
        return json_response({**about, "books": [present(b) for b in BOOKS.values()]}, headers=headers)
    match = re.fullmatch(r"/books/(\d+)", request.path)
    if match:
        book = BOOKS.get(int(match[1]))
        if book is None:
            return json_response({**about, "error": f"no book {match[1]}"}, 404, headers)
        return json_response({**about, "book": present(book)}, headers=headers)
    return error(404, f"no such path {request.path}: try /books or /books/<id>")


if __name__ == "__main__":
    serve(f"catalog-{VERSION}", handle, default_port=9080)
