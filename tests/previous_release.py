"""The previous release of etcdmgr, run from its own source tree, for mixed-release tests.

The release is taken from this repository's history (`git archive`), unpacked once under the
git-ignored build folder and run with the same interpreter and dependencies as the tests.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The first release: the peer protocol before fencing sequence numbers and typed calls.
PREVIOUS_RELEASE = "f418929"


def previous_release_command(commit: str = PREVIOUS_RELEASE) -> list[str]:
    """The command line that runs etcdmgr as it was at `commit`."""
    tree = ROOT / "build" / f"release-{commit}"
    entry = tree / "etcdmgr.py"
    if not entry.exists():
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "etcdmgr.py", "etcdmgr"],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise RuntimeError(
                f"cannot read release {commit} from this repository's history "
                f"(a shallow clone?): {archive.stderr.decode(errors='replace').strip()}"
            )
        partial = tree.with_name(tree.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(partial, filter="data")
        partial.rename(tree)
    return [sys.executable, str(entry)]
