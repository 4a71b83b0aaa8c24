"""What a peer call can fail with; the transport turns library errors into these."""

from etcdmgr.model.errors import EtcdmgrError


class PeerError(EtcdmgrError):
    """A call to another manager failed."""


class PeerUnreachable(PeerError):
    """No connection, no TLS handshake, or no answer in time."""


class PeerAuthError(PeerError):
    """TLS verification failed, or the certificate names another peer than the one expected."""


class ProtocolError(PeerError):
    """A frame that is not a valid message of this protocol.

    request_id is set when the frame was readable enough to answer (a request with an id),
    so the server can reply with an error instead of dropping the connection.
    """

    def __init__(self, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class RpcError(PeerError):
    """The remote handler refused the call on purpose (wrong cluster, stale token, ...).

    Handlers raise it to answer with an error; callers receive it with the same code and message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def innermost_reason(e: BaseException) -> str:
    """The most specific message in an exception chain (trio wraps ssl errors, for one)."""
    while e.__cause__ is not None:
        e = e.__cause__
    return str(e) or type(e).__name__
