"""``output_claim_to_headers``: a verified token's claim as a request header value, as Envoy writes it.

A string is copied as is, an integral number without a fraction, a boolean as ``true``/``false``;
other values (objects, lists, null) and absent claims add no header. A claim name with dots that is
not itself a claim walks nested objects (``nested.key``). A value that could not be a header value
(a control character) adds no header rather than letting a token inject one.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def claim_value(payload: dict[str, object], claim: str) -> object:
    if claim in payload:
        return payload[claim]
    node: object = payload
    for part in claim.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def header_value(value: object) -> bytes | None:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and value >= 0 else repr(value)
    else:
        return None
    if not text:
        return None
    encoded = text.encode()
    return None if _CONTROL.search(encoded) else encoded
