#!/usr/bin/env python3
"""Entry point: `python3 etcdmgr.py daemon|ctl|pki|version ...` (the zipapp runs the same main)."""

# Parsed by any Python: an old one gets the one line of python_check, not a syntax error.
from etcdmgr.python_check import require

require()

from etcdmgr.cli.main import main  # noqa: E402  (after the check: it needs Python 3.11)

if __name__ == "__main__":
    raise SystemExit(main())
