"""The project's own error types; boundaries turn library errors into these."""


class EtcdmgrError(Exception):
    """Base of every error etcdmgr raises on purpose."""


class InvalidData(EtcdmgrError):
    """A stored or received document does not have the expected shape."""
