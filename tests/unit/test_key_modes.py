"""Keys are 0600 and every folder holding them 0700, whatever the umask (all tests here run
with umask 0); `pki init` uses only a folder of its own; the dump is 0600; loose keys are found."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from key_modes import loose, umask

from etcdmgr.cli.dump_cmd import _write as write_dump
from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.pki import loose_keys
from etcdmgr.pki.etcd_tls import issue_etcd_node_certs, needs_reissue

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LIFE = timedelta(days=30)
NODE = ("m1", ["https://10.0.0.5:2380"], ["https://10.0.0.5:4001"], "10.0.0.5")


@pytest.fixture(autouse=True)
def no_umask() -> Iterator[None]:
    with umask(0):
        yield


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def init(pki: Path) -> Path:
    assert pki_main(["init", f"--pki-dir={pki}"]) == 0
    return pki


def test_pki_init_makes_a_private_folder(tmp_path: Path) -> None:
    pki = init(tmp_path / "new" / "pki")
    assert loose(pki) == {}
    assert {p.name: mode(p) for p in pki.glob("*.crt")} == dict.fromkeys(
        ("etcd-manager-ca.crt", "etcd-peers-ca.crt", "etcd-clients-ca.crt"), 0o644
    )


def test_pki_init_into_an_empty_folder_of_ours_narrows_it(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir(mode=0o777)
    init(pki)
    assert loose(pki) == {}


def test_pki_init_refuses_a_folder_with_foreign_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir(mode=0o777)
    (pki / "planted.key").write_text("not ours")
    assert pki_main(["init", f"--pki-dir={pki}"]) == 1
    assert "refusing" in capsys.readouterr().err
    assert [p.name for p in pki.iterdir()] == ["planted.key"]
    assert mode(pki) == 0o777  # left as found


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder away needs root")
def test_pki_init_refuses_an_empty_folder_of_someone_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir(mode=0o777)
    os.chown(pki, 65534, 65534)
    assert pki_main(["init", f"--pki-dir={pki}"]) == 1
    assert "belongs to uid 65534" in capsys.readouterr().err
    assert list(pki.iterdir()) == []


def test_client_cert_folder_is_private(tmp_path: Path) -> None:
    pki = init(tmp_path / "pki")
    out = tmp_path / "client" / "certs"
    assert pki_main(["client-cert", f"--pki-dir={pki}", "--name=op", f"--out={out}"]) == 0
    assert loose(out, up_to=tmp_path / "client") == {}


def test_etcd_certificates_stay_private_through_a_renewal(tmp_path: Path) -> None:
    pki = init(tmp_path / "pki")
    data = tmp_path / "data"
    data.mkdir()
    out = data / "pki" / "cluster-token"
    issue_etcd_node_certs(pki, out, *NODE, LIFE, now=NOW)
    assert loose(out, up_to=data / "pki") == {}

    later = NOW + LIFE * 3 / 4  # less than a third of the life left
    assert needs_reissue(pki, out, *NODE, now=later) is not None
    before = {f: f.read_bytes() for f in out.rglob("*.crt")}
    issue_etcd_node_certs(pki, out, *NODE, LIFE, now=later)
    assert needs_reissue(pki, out, *NODE, now=later) is None
    assert all(f.read_bytes() != old for f, old in before.items() if f.name != "ca.crt")  # reissued
    assert loose(out, up_to=data / "pki") == {}


def test_dump_out_is_private(tmp_path: Path) -> None:
    out = tmp_path / "dump.jsonl"
    write_dump(str(out), ['{"api": "v3", "key": "k", "value": "v"}\n'])
    assert mode(out) == 0o600
    assert out.read_text() == '{"api": "v3", "key": "k", "value": "v"}\n'


def test_loose_keys_are_found(tmp_path: Path) -> None:
    pki = init(tmp_path / "pki")
    assert loose_keys([pki, tmp_path / "missing"]) == []
    (pki / "etcd-peers-ca.key").chmod(0o644)
    pki.chmod(0o777)
    assert set(loose_keys([pki])) == {
        f"key {pki / 'etcd-peers-ca.key'} has mode 0644; expected 0600",
        f"folder {pki} holds keys and has mode 0777; expected 0700",
    }
