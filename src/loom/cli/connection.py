"""How the CLI reaches the control plane: its URL, the trust bundle that verifies it and the
operator token that lets a command write.

Both come from the control plane's state directory (``--state-dir``, ``$LOOM_STATE_DIR``, default
``~/.loom/controlplane``): ``root-cert.pem`` and ``operator-token``. ``$LOOM_CA_FILE`` and
``$LOOM_OPERATOR_TOKEN`` override them, for an operator on another machine.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import typer

DEFAULT_CONTROL_PLANE = "https://127.0.0.1:15010"
DEFAULT_STATE_DIR = "~/.loom/controlplane"
BUNDLE = "root-cert.pem"
OPERATOR_TOKEN = "operator-token"

CONTROL_PLANE_OPTION = typer.Option(
    DEFAULT_CONTROL_PLANE, "--control-plane", envvar="LOOM_CONTROL_PLANE", help="The control plane's URL."
)
STATE_DIR_OPTION = typer.Option(
    DEFAULT_STATE_DIR,
    "--state-dir",
    envvar="LOOM_STATE_DIR",
    help="The control plane's state directory: its trust bundle (root-cert.pem) and operator token.",
)


class AccessError(Exception):
    """What the CLI needs to reach the control plane is missing (says what to give)."""


@dataclass(frozen=True)
class ControlPlaneAccess:
    url: str
    state_dir: Path = Path(DEFAULT_STATE_DIR)

    @classmethod
    def of(cls, url: str, state_dir: str | Path | None = None) -> ControlPlaneAccess:
        return cls(url.rstrip("/"), Path(state_dir or DEFAULT_STATE_DIR).expanduser())

    @property
    def bundle(self) -> Path:
        override = os.environ.get("LOOM_CA_FILE")
        return Path(override).expanduser() if override else self.state_dir / BUNDLE

    def ssl_context(self) -> ssl.SSLContext | None:
        """For an ``https://`` URL: verify the control plane with the trust bundle."""
        if not self.url.startswith("https://"):
            return None
        bundle = self.bundle
        try:
            return ssl.create_default_context(cafile=str(bundle))
        except (OSError, ssl.SSLError) as exc:
            raise AccessError(
                f"cannot read the control plane's trust bundle {bundle} ({exc}): give the control "
                "plane's --state-dir (or $LOOM_STATE_DIR), or $LOOM_CA_FILE"
            ) from None

    def operator_token(self) -> str | None:
        """``$LOOM_OPERATOR_TOKEN``, else the state directory's ``operator-token``, else None."""
        token = os.environ.get("LOOM_OPERATOR_TOKEN", "").strip()
        if token:
            return token
        try:
            return (self.state_dir / OPERATOR_TOKEN).read_text().strip() or None
        except OSError:
            return None
