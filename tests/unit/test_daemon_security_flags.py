"""`daemon` security flags: where a plain peer API may listen, and --peer-tls."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdmgr.cli import daemon_cmd
from etcdmgr.cli.goflags import parse
from etcdmgr.daemon.config import DaemonConfig, PeerTls, insecure_address_problem
from etcdmgr.peer.streams import Plaintext


def test_a_plain_peer_api_listens_only_on_loopback_without_the_override() -> None:
    for address in ("127.0.0.1", "127.0.0.3", "127.20.1.9", "::1"):
        assert insecure_address_problem(address, PeerTls.OFF, False) is None
    for address in ("10.1.2.3", "192.168.0.10", "0.0.0.0", "::", "fd00::1", "localhost"):
        problem = insecure_address_problem(address, PeerTls.OFF, False)
        assert problem is not None and "--insecure-allow-network" in problem and "\n" not in problem
        assert insecure_address_problem(address, PeerTls.OFF, True) is None
        # Moving to TLS speaks plain websockets only with loopback addresses: fine anywhere.
        assert insecure_address_problem(address, PeerTls.PREFER, False) is None
        assert insecure_address_problem(address, PeerTls.ON, False) is None


def args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--cluster-name=test",
        f"--backup-store=file://{tmp_path}/store",
        f"--data-dir={tmp_path}/data",
        f"--discovery-store=file://{tmp_path}/discovery",
        *extra,
    ]


def refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert daemon_cmd.main(args(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "data").exists(), "refused before anything was created or bound"
    return err


def test_insecure_on_a_network_address_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(tmp_path, capsys, "--insecure", "--etcd-insecure", "--address=10.11.12.13")
    assert err.startswith("etcdmgr daemon: --insecure on --address=10.11.12.13:"), err
    err = refusal(tmp_path, capsys, "--peer-tls=off", "--etcd-insecure", "--address=10.11.12.13")
    assert "--insecure-allow-network" in err


def test_peer_tls_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "give --pki-dir" in refusal(tmp_path, capsys, "--peer-tls=prefer", "--etcd-insecure")
    assert "contradicts --peer-tls=prefer" in refusal(
        tmp_path, capsys, "--insecure", "--peer-tls=prefer", "--etcd-insecure"
    )
    assert "must be on, prefer or off" in refusal(tmp_path, capsys, "--peer-tls=maybe", "--etcd-insecure")

    def config(*extra: str) -> DaemonConfig:
        parsed = parse(daemon_cmd.USAGE, "daemon", args(tmp_path, *extra))
        return daemon_cmd.config_from_args(parsed, {})

    assert config("--pki-dir=/p").plaintext_peers() is Plaintext.NEVER
    assert config("--pki-dir=/p", "--peer-tls=prefer").plaintext_peers() is Plaintext.LOOPBACK
    assert config("--insecure").peer_tls is PeerTls.OFF
    assert config("--insecure").plaintext_peers() is Plaintext.LOOPBACK
    allowed = config("--insecure", "--insecure-allow-network", "--address=10.11.12.13")
    assert allowed.plaintext_peers() is Plaintext.ANYWHERE


def test_help_names_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon_cmd.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--insecure-allow-network" in out and "--peer-tls=MODE" in out
