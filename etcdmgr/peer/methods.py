"""Names of the peer API's methods, and which of them change anything (those need the token)."""

PING = "Ping"
GET_INFO = "GetInfo"
LEADER_NOTIFICATION = "LeaderNotification"
JOIN_CLUSTER = "JoinCluster"
RECONFIGURE = "Reconfigure"
STOP_ETCD = "StopEtcd"
DO_RESTORE = "DoRestore"
# A restore drill touches only scratch files and writes its record into the store: it needs no
# token, and the node runs one at a time and at most one a DRILL_SPACING (node/drill.py).
DO_DRILL = "DoDrill"

MUTATING = frozenset({JOIN_CLUSTER, RECONFIGURE, STOP_ETCD, DO_RESTORE})
