"""Where the archive unpacks: SHIV_ROOT, else home, else a private runtime or temp folder; a
folder others could write (or own, or link elsewhere) is never used; no folder is one line."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from etcdmgr.unpack import UnpackError, candidates, choose_root, site_packages, unpack, unusable

UID = os.geteuid()
OTHER_UID = 65534 if UID != 65534 else 65533


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    out = {name: tmp_path / name for name in ("home", "runtime", "run-user", "tmp")}
    for folder in out.values():
        folder.mkdir(mode=0o700)
    return out


def env_of(places: dict[str, Path], **extra: str) -> dict[str, str]:
    return {"HOME": str(places["home"]), "TMPDIR": str(places["tmp"]), **extra}


def test_the_order_of_preference(places: dict[str, Path]) -> None:
    env = env_of(places, XDG_RUNTIME_DIR=str(places["runtime"]))
    assert [c.path for c in candidates(env, UID, places["run-user"])] == [
        places["home"] / ".shiv",
        places["runtime"] / "etcdmgr",
        places["run-user"] / str(UID) / "etcdmgr",
        places["tmp"] / f"etcdmgr-{UID}",
    ]
    only = [c.path for c in candidates({**env, "SHIV_ROOT": "/srv/x"}, UID, places["run-user"])]
    assert only == [Path("/srv/x")]


def test_home_is_used_and_made_private(places: dict[str, Path]) -> None:
    assert choose_root(env_of(places), UID, places["run-user"]) == places["home"] / ".shiv"
    assert (places["home"] / ".shiv").stat().st_mode & 0o777 == 0o700


def test_an_unusable_home_falls_back_to_the_runtime_folder(places: dict[str, Path]) -> None:
    env = env_of(places, HOME="/proc", XDG_RUNTIME_DIR=str(places["runtime"]))
    assert choose_root(env, UID, places["run-user"]) == places["runtime"] / "etcdmgr"


def test_then_to_a_private_temp_folder(places: dict[str, Path]) -> None:
    chosen = choose_root(env_of(places, HOME="/proc"), UID, places["run-user"])
    assert chosen == places["tmp"] / f"etcdmgr-{UID}"
    assert chosen.stat().st_mode & 0o777 == 0o700


def test_a_temp_folder_others_can_write_is_refused(places: dict[str, Path]) -> None:
    planted = places["tmp"] / f"etcdmgr-{UID}"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(UnpackError) as e:
        choose_root(env_of(places, HOME="/proc"), UID, places["run-user"])
    line = str(e.value)
    assert f"{planted}: others can write it (mode 0777)" in line
    assert "/proc/.shiv: " in line
    assert "set SHIV_ROOT" in line and "\n" not in line


@pytest.mark.skipif(UID != 0, reason="needs root to give a folder to another user")
def test_a_temp_folder_of_another_user_is_refused(places: dict[str, Path]) -> None:
    planted = places["tmp"] / f"etcdmgr-{UID}"
    planted.mkdir(mode=0o700)
    os.chown(planted, OTHER_UID, -1)
    with pytest.raises(UnpackError, match=f"owned by uid {OTHER_UID}, not by uid {UID}"):
        choose_root(env_of(places, HOME="/proc"), UID, places["run-user"])


def test_a_link_in_the_temp_folder_is_refused(places: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (places["tmp"] / f"etcdmgr-{UID}").symlink_to(elsewhere)
    with pytest.raises(UnpackError, match="a link, not a folder"):
        choose_root(env_of(places, HOME="/proc"), UID, places["run-user"])


def test_shiv_root_is_made_with_its_parents_and_never_falls_back(
    places: dict[str, Path], tmp_path: Path
) -> None:
    chosen = choose_root(env_of(places, SHIV_ROOT=str(tmp_path / "a" / "b")), UID, places["run-user"])
    assert chosen == tmp_path / "a" / "b"
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o757)
    with pytest.raises(UnpackError, match="others can write it"):
        choose_root(env_of(places, SHIV_ROOT=str(open_folder)), UID, places["run-user"])


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    from etcdmgr.unpack import Candidate

    (tmp_path / "f").write_text("")
    assert unusable(Candidate(tmp_path / "f", explicit=True, shared_parent=False), UID) is not None


def make_archive(path: Path, build_id: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("build.json", json.dumps({"build_id": build_id}))
        z.writestr("site-packages/pkg/__init__.py", "X = 1\n")
        z.writestr("__main__.py", "")
    return path


def test_unpacks_once_per_build(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.pyz", "b1")
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    env = {"SHIV_ROOT": str(root)}
    site = site_packages(archive, env, UID)
    assert site == root / "etcdmgr_b1" / "site-packages"
    assert (site / "pkg" / "__init__.py").read_text() == "X = 1\n"
    # Compiled for this Python even where PYTHONDONTWRITEBYTECODE is set.
    assert (site / "pkg" / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc").exists()
    (site / "pkg" / "marker").write_text("")  # a second run finds it and unpacks nothing
    assert site_packages(archive, env, UID) == site and (site / "pkg" / "marker").exists()


def test_a_half_unpacked_tree_is_redone(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.pyz", "b2")
    root = tmp_path / "root"
    (root / "etcdmgr_b2").mkdir(parents=True)  # a crash between rename and... or a stray folder
    (root / ".etcdmgr_b2.partial" / "junk").mkdir(parents=True)
    with zipfile.ZipFile(archive) as z:
        site = unpack(z, root, "b2")
    assert (site / "pkg" / "__init__.py").exists()
    assert not (root / ".etcdmgr_b2.partial").exists()


def test_an_unreadable_archive_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.pyz").write_bytes(b"#!/usr/bin/env python3\nnot a zip")
    with pytest.raises(UnpackError, match="cannot read the archive"):
        site_packages(tmp_path / "broken.pyz", {"SHIV_ROOT": str(tmp_path)}, UID)
