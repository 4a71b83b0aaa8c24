"""Where keys live: folders 0700 and keys 0600 whatever the umask; `pki init` only into a folder
of its own; keys that others can read reported."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from etcdmgr.pki.errors import PkiError
from etcdmgr.util.atomic import make_dirs

KEY_DIR_MODE = 0o700
KEY_MODE = 0o600


def init_pki_dir(pki_dir: Path) -> None:
    """Make `pki_dir` for new CAs: created here (0700), or an empty folder this user owns
    (narrowed to 0700). Anything else may hold files, or be a folder, of someone else's."""
    make_dirs(pki_dir.parent)
    try:
        os.mkdir(pki_dir, KEY_DIR_MODE)
    except FileExistsError:
        st = os.lstat(pki_dir)
        if not stat.S_ISDIR(st.st_mode):
            raise PkiError(f"{pki_dir} exists and is not a folder") from None
        if st.st_uid != os.getuid():
            raise PkiError(f"{pki_dir} exists and belongs to uid {st.st_uid}: refusing to use it") from None
        if held := sorted(p.name for p in pki_dir.iterdir()):
            raise PkiError(
                f"refusing to overwrite or mix with files in {pki_dir}: it holds {', '.join(held[:5])}"
                + (", ..." if len(held) > 5 else "")
            ) from None
    os.chmod(pki_dir, KEY_DIR_MODE)


def loose_keys(roots: Iterable[Path]) -> list[str]:
    """What group or others can reach under `roots`: keys (*.key) they can access at all, and
    folders holding keys they can write to (and so swap a key). One sentence per finding."""
    found: list[str] = []
    for root in roots:
        for key in sorted(root.rglob("*.key")) if root.is_dir() else ():
            try:
                mode = stat.S_IMODE(key.stat().st_mode)
                dir_mode = stat.S_IMODE(key.parent.stat().st_mode)
            except OSError:
                continue
            if mode & 0o077:
                found.append(f"key {key} has mode {mode:04o}; expected {KEY_MODE:04o}")
            if dir_mode & 0o022:
                found.append(
                    f"folder {key.parent} holds keys and has mode {dir_mode:04o}; expected {KEY_DIR_MODE:04o}"
                )
    return list(dict.fromkeys(found))
