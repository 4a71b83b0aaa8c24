"""Names of the peer API's methods, and which of them change anything (those need the token)."""

PING = "Ping"
GET_INFO = "GetInfo"
LEADER_NOTIFICATION = "LeaderNotification"
JOIN_CLUSTER = "JoinCluster"
RECONFIGURE = "Reconfigure"
STOP_ETCD = "StopEtcd"
DO_RESTORE = "DoRestore"

MUTATING = frozenset({JOIN_CLUSTER, RECONFIGURE, STOP_ETCD, DO_RESTORE})
