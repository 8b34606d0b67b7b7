"""The control plane's state directory (``--state-dir``, default ``~/.loom/controlplane``, mode 0700).

    ca/root-cert.pem      the self-signed root (0644)       } only without --ca-cert/--ca-key
    ca/root-key.pem       its key (0600)                    }
    ca/serving-cert.pem   the API's serving certificate chain, issued at start (0644)
    ca/serving-key.pem    its key (0600)
    token-key             the HMAC key join tokens are signed with (0600)
    operator-token        the bearer token the write API requires (0600)
    root-cert.pem         the trust bundle (0644): what clients verify the control plane with

Everything is created on first start and read again afterwards, so a restarted control plane
keeps its CA, its tokens and its operator credential. Replicas (e.g. on one etcd store) share one
state directory, or copies of it.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loom.controlplane.security import tokens
from loom.controlplane.security.files import read_private, write_private

DEFAULT_STATE_DIR = Path("~/.loom/controlplane")
BUNDLE = "root-cert.pem"
OPERATOR_TOKEN = "operator-token"
TOKEN_KEY = "token-key"


def default_state_dir() -> Path:
    """``$LOOM_STATE_DIR``, else ``~/.loom/controlplane``."""
    return Path(os.environ.get("LOOM_STATE_DIR") or DEFAULT_STATE_DIR).expanduser()


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()

    @property
    def ca_dir(self) -> Path:
        return self.path / "ca"

    @property
    def bundle(self) -> Path:
        return self.path / BUNDLE

    def prepare(self) -> None:
        """Create the directory (0700), or make an existing one 0700."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.chmod(0o700)
        self.ca_dir.mkdir(mode=0o700, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while reading or creating the state: two replicas starting together on one state
        directory create one CA, not two."""
        with (self.path / ".lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def operator_token(self) -> str:
        """The operator's bearer token: read, or created on first start (random, 0600)."""
        path = self.path / OPERATOR_TOKEN
        if path.exists():
            token = read_private(path).decode().strip()
            if token:
                return token
        token = secrets.token_urlsafe(32)
        write_private(path, (token + "\n").encode())
        return token

    def token_key(self) -> bytes:
        """The join tokens' HMAC key: read, or created on first start (random, 0600)."""
        path = self.path / TOKEN_KEY
        if path.exists():
            text = read_private(path).strip()
            if text:
                return base64.b64decode(text)
        key = tokens.new_key()
        write_private(path, base64.b64encode(key) + b"\n")
        return key
