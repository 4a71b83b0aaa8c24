"""TCP and TLS glue shared by the peer server and client: handshakes, error reasons, idleness."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from enum import Enum

import trio

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer.errors import PeerAuthError, PeerError, PeerUnreachable, innermost_reason
from etcdmgr.pki import peer_id_from_cert
from etcdmgr.pki.peer_tls import CertKind

# An SSL context, or a function returning the one to use now. It is asked once per connection,
# so a daemon whose TLS files changed (a CA rotation) swaps in new contexts for new connections
# while open ones go on with the old.
TlsSource = ssl.SSLContext | Callable[[], ssl.SSLContext]


def current_context(source: TlsSource) -> ssl.SSLContext:
    return source if isinstance(source, ssl.SSLContext) else source()


class Plaintext(Enum):
    """With whom a plain websocket (no TLS: the caller is not authenticated) is acceptable."""

    NEVER = "never"  # mutual TLS only
    LOOPBACK = "loopback"  # only with loopback addresses: other local processes
    ANYWHERE = "anywhere"  # anyone who reaches the port (--insecure-allow-network)

    def allows(self, address: str) -> bool:
        return self is Plaintext.ANYWHERE or (self is Plaintext.LOOPBACK and is_loopback(address))


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1 (an IPv4-mapped ::ffff:127.x too); anything not an IP literal is not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


async def open_tcp(endpoint: PeerEndpoint, local_address: str | None = None) -> trio.SocketStream:
    """A TCP connection to endpoint, from local_address when given; PeerUnreachable."""
    try:
        return await trio.open_tcp_stream(endpoint.ip, endpoint.port, local_address=local_address)
    except OSError as e:
        raise PeerUnreachable(f"cannot connect to {endpoint}: {e}") from e


async def client_tls_handshake(
    tcp: trio.abc.Stream, endpoint: PeerEndpoint, ssl_context: ssl.SSLContext
) -> trio.SSLStream[trio.abc.Stream]:
    """TLS over tcp, handshake done; PeerAuthError or PeerUnreachable (tcp is closed then)."""
    # No server_hostname: peer ids are not host names; the caller checks the certificate's id.
    stream = trio.SSLStream(tcp, ssl_context)
    try:
        await stream.do_handshake()
    except BaseException as e:
        await trio.aclose_forcefully(stream)
        if isinstance(e, trio.BrokenResourceError):
            raise classify(e, f"TLS handshake with {endpoint} failed") from e
        raise
    return stream


async def server_tls_handshake(stream: trio.abc.Stream) -> str | None:
    """Finish the server side of TLS and return the client's peer id (None without TLS).

    Raises PeerAuthError naming the TLS error, or when the certificate names no peer.
    """
    if not isinstance(stream, trio.SSLStream):
        return None
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as e:
        raise PeerAuthError(f"TLS handshake failed: {innermost_reason(e)}") from e
    caller = certificate_peer_id(stream, "client")
    if caller is None:
        raise PeerAuthError("the client certificate names no etcd-manager peer")
    return caller


def certificate_peer_id(stream: trio.abc.Stream, kind: CertKind) -> str | None:
    if not isinstance(stream, trio.SSLStream):
        return None
    der: bytes | None = stream.getpeercert(binary_form=True)
    return peer_id_from_cert(der, kind=kind)


def classify(e: BaseException, what: str) -> PeerError:
    """PeerAuthError when a certificate was refused on either side, else PeerUnreachable."""
    cause = _ssl_error(e)
    if cause is not None and _is_certificate_problem(cause):
        return PeerAuthError(f"{what}: {innermost_reason(e)}")
    return PeerUnreachable(f"{what}: {innermost_reason(e)}")


def remote_address(stream: trio.abc.Stream) -> str:
    inner = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(inner, trio.SocketStream):
        try:
            host, port, *_ = inner.socket.getpeername()
        except OSError:
            return "an unknown address"
        return f"{host}:{port}"
    return repr(inner)


def remote_ip(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "an unknown address"


def _ssl_error(e: BaseException | None) -> ssl.SSLError | None:
    while e is not None:
        if isinstance(e, ssl.SSLError):
            return e
        e = e.__cause__ or e.__context__
    return None


def _is_certificate_problem(e: ssl.SSLError) -> bool:
    # Our own verification failed, or the other side sent an alert about our certificate
    # (with TLS 1.3 a client learns that its certificate was refused only on its first read).
    if isinstance(e, ssl.SSLCertVerificationError):
        return True
    text = f"{e.reason} {e}".upper()
    return any(word in text for word in ("CERTIFICATE", "UNKNOWN_CA", "UNKNOWN CA"))


class IdleTimer:
    """Tracks activity on a connection; `expired()` returns once it was idle for `timeout`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.busy = 0  # calls in flight; a busy connection is never idle
        self.last = trio.current_time()

    def touch(self) -> None:
        self.last = trio.current_time()

    async def expired(self) -> None:
        while True:
            await trio.sleep_until(self.last + self.timeout)
            if self.busy:
                self.touch()
            elif trio.current_time() >= self.last + self.timeout:
                return
