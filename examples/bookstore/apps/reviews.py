"""reviews: what readers said about each book.

    GET /reviews/<id>   the reviews of book <id> (an empty list when it has none)

``REVIEWS_DELAY_SECONDS`` (default 0) makes every answer that much slower: set it to see the
timeout on the reviews VirtualService cut a slow call short.
"""

from __future__ import annotations

import os
import re
import time

from httpapp import Request, Response, error, json_response, serve

DELAY_SECONDS = float(os.environ.get("REVIEWS_DELAY_SECONDS", "0"))

REVIEWS: dict[int, list[dict[str, str | int]]] = {
    1: [
        {"reviewer": "ada", "stars": 5, "text": "Still the best first book on the craft."},
        {"reviewer": "linus", "stars": 4, "text": "Practical, if a little folksy."},
    ],
    2: [{"reviewer": "grace", "stars": 5, "text": "Explains why every database is the way it is."}],
    3: [{"reviewer": "margaret", "stars": 4, "text": "Error budgets changed how my team works."}],
    4: [{"reviewer": "fred", "stars": 5, "text": "Adding people to a late project still makes it later."}],
}


def handle(request: Request) -> Response:
    match = re.fullmatch(r"/reviews/(\d+)", request.path)
    if request.method != "GET" or not match:
        return error(404, "try GET /reviews/<id>")
    if DELAY_SECONDS:
        time.sleep(DELAY_SECONDS)
    book_id = int(match[1])
    return json_response({"book_id": book_id, "reviews": REVIEWS.get(book_id, [])})


if __name__ == "__main__":
    serve("reviews", handle, default_port=9090)
