# Parsed by any Python: an old one gets the one line of python_check, not a syntax error.
from etcdmgr.python_check import require

require()

from etcdmgr.cli.main import main  # noqa: E402  (after the check: it needs Python 3.11)

raise SystemExit(main())
