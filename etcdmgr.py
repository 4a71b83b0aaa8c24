#!/usr/bin/env python3
"""Entry point: `python3 etcdmgr.py daemon|ctl|pki|version ...` (the zipapp runs the same main)."""

from etcdmgr.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
