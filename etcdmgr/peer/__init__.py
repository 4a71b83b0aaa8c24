"""The private API between managers: transport (etcdmgr.peer.transport), gossip, leadership."""
