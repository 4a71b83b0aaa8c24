"""End-to-end tests: the built dist/etcdmgr.pyz run as separate processes."""
