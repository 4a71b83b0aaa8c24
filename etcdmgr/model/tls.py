"""The TLS files etcd serves with and the manager dials etcd with: plain paths, shared by the
pki layer that writes them and the etcd layer that uses them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TLSFiles:
    """A server certificate, its key, and the CA its clients must be signed by."""

    cert: Path
    key: Path
    ca: Path
    client_cert_auth: bool = True


@dataclass(frozen=True)
class ClientTLS:
    """What a client needs to reach an https etcd: the CA, and a client cert if etcd asks for one."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None
