"""Small helpers with no knowledge of etcd or peers."""
