"""etcdmgr: runs beside each etcd member and keeps the etcd cluster converged to its spec."""

__version__ = "0.1.0"
