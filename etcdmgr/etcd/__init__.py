"""etcd, etcdctl and etcdutl as typed async calls: versions, the etcd child process, member
operations, health, snapshots and the v2 keyspace. Every call has a timeout."""
