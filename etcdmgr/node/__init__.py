"""The per-host service the leader drives: identity, state file, the etcd child, node RPCs."""
