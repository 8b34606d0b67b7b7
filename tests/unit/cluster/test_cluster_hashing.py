from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from loom.proxy.cluster.hashing import cookie_value, hash_key, query_value
from loom.proxy.codec.head import RequestHead
from loom.snapshot.model import ConsistentHash, HashCookie


def head(headers: dict[bytes, bytes] | None = None, query: bytes = b"") -> RequestHead:
    h = RequestHead()
    h.hmap = dict(headers or {})
    h.query = query
    return h


def test_header_key_is_looked_up_case_insensitively() -> None:
    cfg = ConsistentHash(header="X-User-Id")
    assert hash_key(cfg, head({b"x-user-id": b"alice"}), "10.1.1.1") == b"alice"
    assert hash_key(cfg, head({b"x-other": b"bob"}), "10.1.1.1") is None
    assert hash_key(cfg, head({b"x-user-id": b""}), "10.1.1.1") == b""


def test_cookie_key() -> None:
    cfg = ConsistentHash(cookie=HashCookie(name="session"))
    assert hash_key(cfg, head({b"cookie": b"a=1; session=s123; b=2"}), "") == b"s123"
    assert hash_key(cfg, head({b"cookie": b"a=1"}), "") is None
    assert hash_key(cfg, head(), "") is None


def test_cookie_parsing() -> None:
    assert cookie_value(b"session=abc", b"session") == b"abc"
    assert cookie_value(b"  session = abc ;x=y", b"session") == b"abc"
    assert cookie_value(b'session="quoted"', b"session") == b"quoted"
    assert cookie_value(b"xsession=no; session=yes", b"session") == b"yes"
    assert cookie_value(b"a=1; session=first, session=second", b"session") == b"first"
    assert cookie_value(b"session=; session=later", b"session") == b"later"
    assert cookie_value(b"session", b"session") is None
    assert cookie_value(b"Session=abc", b"session") is None
    assert cookie_value(b"token=a=b=c", b"token") == b"a=b=c"


def test_query_param_key() -> None:
    cfg = ConsistentHash(query_param="user")
    assert hash_key(cfg, head(query=b"a=1&user=x"), "") == b"x"
    assert hash_key(cfg, head(query=b"a=1"), "") is None
    assert hash_key(cfg, head(), "") is None


def test_query_parsing() -> None:
    assert query_value(b"user=x&user=y", b"user") == b"x"
    assert query_value(b"user", b"user") == b""
    assert query_value(b"user=", b"user") == b""
    assert query_value(b"username=x&user=y", b"user") == b"y"
    assert query_value(b"user=a%20b", b"user") == b"a%20b"
    assert query_value(b"&&user=z&", b"user") == b"z"


def test_source_ip_key() -> None:
    cfg = ConsistentHash(source_ip=True)
    assert hash_key(cfg, head(), "10.2.3.4") == b"10.2.3.4"
    assert hash_key(cfg, head(), "") is None


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_values = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~", max_size=12)


@given(params=st.lists(st.tuples(_names, _values), max_size=6), name=_names)
def test_query_value_finds_the_first_occurrence(params: list[tuple[str, str]], name: str) -> None:
    query = urlencode(params).encode()
    expected = next((v.encode() for k, v in params if k == name), None)
    assert query_value(query, name.encode()) == expected


@given(pairs=st.dictionaries(_names, _values.filter(bool), max_size=6), name=_names)
def test_cookie_value_finds_the_named_cookie(pairs: dict[str, str], name: str) -> None:
    header = "; ".join(f"{k}={v}" for k, v in pairs.items()).encode()
    expected = pairs[name].encode() if name in pairs else None
    assert cookie_value(header, name.encode()) == expected


def test_new_hash_cookie_mints_a_value_and_its_set_cookie_header() -> None:
    from loom.proxy.cluster import new_hash_cookie
    from loom.snapshot import from_builtins
    from loom.snapshot.model import HashCookie

    cookie = from_builtins({"name": "affinity", "path": "/shop", "ttl": "90s"}, HashCookie)
    value, header = new_hash_cookie(cookie, getrandbits=lambda bits: 0xABC)
    assert value == b"%032x" % 0xABC
    assert header == b"affinity=" + value + b"; Path=/shop; HttpOnly; Max-Age=90"
    session = from_builtins({"name": "affinity", "ttl": "0s"}, HashCookie)
    assert b"Max-Age" not in new_hash_cookie(session)[1]
