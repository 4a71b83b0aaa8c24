"""Local object-store servers for tests, each a real process on 127.0.0.1 with a free port:
moto's S3 server (PyPI `moto[server]`) and Azurite's Blob service (npm `azurite`).

Each test gets its own prefix in the one bucket (container) of the session, and the environment
that points etcdmgr at it the way users set it: kops' S3_* variables for S3, a connection
string for Azure. `RawStore` reads and writes objects behind the store's back, as the original
program or an operator would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path

import obstore
from obstore.store import AzureStore, S3Store

BUCKET = "etcdmgr-tests"
# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connections are refused."""
    return free_port()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not listening after {timeout}s: {log.read_text()[-2000:]}")


@dataclass
class Server:
    """A server process; ``env`` points etcdmgr at it, ``url(prefix)`` names a store there."""

    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, prefix: str) -> str:
        scheme = "s3" if self.kind == "s3" else "azureblob"
        return f"{scheme}://{BUCKET}/{prefix}"

    def raw(self, prefix: str) -> RawStore:
        if self.kind == "s3":
            store = S3Store(
                BUCKET,
                prefix=prefix,
                endpoint=self.endpoint,
                access_key_id="test",
                secret_access_key="test",
                region="us-east-1",
                client_options={"allow_http": True},
            )
        else:
            store = AzureStore(
                BUCKET,
                prefix=prefix,
                account_name=AZURITE_ACCOUNT,
                account_key=AZURITE_KEY,
                endpoint=f"{self.endpoint}/{AZURITE_ACCOUNT}",
                client_options={"allow_http": True},
            )
        return RawStore(store, self.url(prefix))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class RawStore:
    """Objects of one prefix, read and written directly (not through etcdmgr)."""

    store: object
    url: str

    def put(self, key: str, data: bytes) -> None:
        obstore.put(self.store, key, data)  # type: ignore[arg-type]

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(obstore.get(self.store, key).bytes())  # type: ignore[arg-type]
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        obstore.delete(self.store, key)  # type: ignore[arg-type]

    def keys(self) -> list[str]:
        return sorted(m["path"] for chunk in obstore.list(self.store) for m in chunk)  # type: ignore[arg-type]

    def upload_tree(self, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.put(path.relative_to(folder).as_posix(), path.read_bytes())


def start_moto(workdir: Path, tls: tuple[Path, Path, Path] | None = None) -> Server:
    """moto's S3 server with one bucket; with ``tls`` (CA, certificate, key) it speaks https only."""
    port = free_port()
    log = workdir / "moto.log"
    cert_args = [] if tls is None else ["-c", str(tls[1]), "-k", str(tls[2])]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port), *cert_args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    _wait_listening(port, proc, log)
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        context = ssl.create_default_context(cafile=str(tls[0]))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    conn.request("PUT", f"/{BUCKET}")
    assert conn.getresponse().status == 200
    env = {
        "S3_ENDPOINT": f"{'http' if tls is None else 'https'}://127.0.0.1:{port}",
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
    }
    return Server("s3", port, proc, log, env)


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 it signed: (CA, cert, key)."""
    from etcdmgr.pki.ca import load_or_create_ca
    from etcdmgr.pki.leaf import issue_leaf

    ca = load_or_create_ca(folder, "store-ca", create=True)
    cert, key = issue_leaf(
        ca, folder, "store", "127.0.0.1", [], ["127.0.0.1"], True, False, timedelta(days=1)
    )
    return ca.cert_path, cert, key


def azurite_command() -> list[str]:
    """Azurite's blob service as installed by scripts/test (npm -g, or node_modules here)."""
    found = shutil.which("azurite-blob")
    if found is None:
        local = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "azurite-blob"
        if not local.exists():
            raise RuntimeError("azurite is not installed: run scripts/test (npm install -g azurite)")
        found = str(local)
    return [found]


def start_azurite(workdir: Path) -> Server:
    port = free_port()
    log = workdir / "azurite.log"
    proc = subprocess.Popen(
        [
            *azurite_command(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
        ],
        cwd=workdir,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    _wait_listening(port, proc, log)
    create_container(port, BUCKET)
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(port)}
    return Server("azure", port, proc, log, env)


def azurite_connection_string(port: int, key: str = AZURITE_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )


def create_container(port: int, container: str) -> None:
    """Create a container with a Shared Key request (obstore cannot create containers)."""
    date = formatdate(usegmt=True)
    version = "2021-08-06"
    to_sign = (
        "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
        f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    )
    digest = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "PUT",
        f"/{AZURITE_ACCOUNT}/{container}?restype=container",
        headers={
            "x-ms-date": date,
            "x-ms-version": version,
            "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(digest).decode()}",
            "Content-Length": "0",
        },
    )
    status = conn.getresponse().status
    assert status in (201, 409), status


def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
