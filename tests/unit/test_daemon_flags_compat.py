"""The original's command lines, unchanged: kops' generated ones, the seed walkthrough's, every
flag of etcd-manager's daemon, Go's boolean and repeat rules, and one plain line for the rest."""

from __future__ import annotations

import importlib
import logging
import re
import shlex
from datetime import timedelta
from pathlib import Path

import pytest

from etcdmgr.cli import daemon_cmd
from etcdmgr.cli.env_file import EnvFileError, parse_env_file
from etcdmgr.cli.goflags import flag_table, parse
from etcdmgr.daemon.config import DaemonConfig, PeerTls
from etcdmgr.discovery.seeds import SeedAddress
from etcdmgr.etcd.launch import build_env
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model import EtcdCluster, EtcdState
from etcdmgr.model.ids import ClusterToken, PeerId
from etcdmgr.node.launch import build_launch, own_node
from etcdmgr.node.layout import DataLayout

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def kops_command_lines() -> list[tuple[str, list[str]]]:
    """(source, args) of each block of the fixture."""
    blocks = (FIXTURES / "kops_etcd_manager_args.txt").read_text().split("\n\n")
    out = []
    for block in blocks:
        lines = block.strip().splitlines()
        args = [line for line in lines if line.startswith("--")]
        if args:
            source = " ".join(line.lstrip("# ") for line in lines if line.startswith("#"))
            out.append((source, args))
    return out


def parsed(argv: list[str]) -> dict[str, object]:
    return parse(daemon_cmd.USAGE, "daemon", argv, repeatable=daemon_cmd.REPEATABLE)


def config(argv: list[str], environ: dict[str, str] | None = None) -> DaemonConfig:
    return daemon_cmd.config_from_args(parsed(argv), environ or {})


def one_line_refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert daemon_cmd.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for internal in ("docopt", "Warning", "unmatched", "Option(", "Usage:"):
        assert internal not in err, err
    return err


BASE = ["--cluster-name=test", "--backup-store=file:///tmp/store", "--insecure", "--etcd-insecure"]


def test_kops_command_lines_parse_and_cloud_volumes_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = kops_command_lines()
    assert len(lines) == 5
    for source, args in lines:
        flags = parsed(args)  # every flag kops writes is accepted
        assert flags["--containerized"] is True, source
        if "--volume-provider=aws" in args:
            err = one_line_refusal(args, capsys)
            assert "--volume-provider=aws" in err and "mount the volume" in err and "--data-dir" in err


def test_a_kops_line_with_the_volume_mounted_by_hand_keeps_its_meaning() -> None:
    _, args = kops_command_lines()[1]  # etcd-events
    args = [a for a in args if a != "--volume-provider=aws"] + [
        "--data-dir=/mnt/etcd-events",
        "--peer-id=etcd-a",
    ]
    c = config(args)
    assert c.cluster_name == "etcd-events" and c.peer_port == 3997
    assert c.peer_id == "etcd-a" and c.data_dir == Path("/mnt/etcd-events")
    assert c.peer_urls == ("https://__name__:2381",)  # __name__ waits for the id (daemon/run.py)
    assert c.dns_suffix == ".internal.minimal.example.com"
    # The original always keeps /etc/hosts, and these URLs name members.
    assert c.hosts_file == Path("/etc/hosts")
    assert c.pki_dir == Path("/etc/kubernetes/pki/etcd-manager") and c.peer_tls is PeerTls.ON
    assert c.external_volumes is None
    assert set(c.unused_flags) == {"--volume-name-tag", "--volume-tag"}
    assert c.log_level == logging.DEBUG  # kops' --v=6 maps onto the log level


def test_kops_bare_metal_line_uses_the_external_volume_and_its_static_config() -> None:
    source, args = kops_command_lines()[4]
    assert "bare-metal" in source
    c = config([*args, "--address=10.0.0.1"])
    assert c.external_volumes is not None
    assert c.external_volumes.root == Path("/rootfs/mnt/disks")  # --containerized
    assert c.external_volumes.prefix == "metal.k8s.local--main--"
    assert c.static_config is not None
    assert c.static_config.spec.member_count == 1 and c.static_config.spec.etcd_version == "3.5.21"
    assert c.peers == (SeedAddress("node0.main.metal.k8s.local"),)
    # The static config names the peers: neither the seeds folder nor /tmp/discovery is used.
    assert c.seeds_dir is None and c.discovery_store is None
    assert c.backup_store == "file:///mnt/disks/backups"


def test_the_external_provider_reads_the_seeds_folder_when_no_static_config_is_given() -> None:
    c = config([*BASE, "--volume-provider=external", "--volume-tag=c--main--", "--address=127.0.0.1"])
    assert c.seeds_dir == Path("/etc/kubernetes/etcd-manager/seeds")
    assert c.external_volumes is not None and c.external_volumes.root == Path("/mnt/disks")
    c = config(
        [*BASE, "--volume-provider=external", "--volume-tag=c--", "--containerized", "--address=127.0.0.1"]
    )
    assert c.seeds_dir == Path("/rootfs/etc/kubernetes/etcd-manager/seeds")
    c = config(
        [*BASE, "--volume-provider=external", "--volume-tag=c--", "--seeds-dir=/s", "--volumes-dir=/v"]
    )
    assert (
        c.seeds_dir == Path("/s") and c.external_volumes is not None and c.external_volumes.root == Path("/v")
    )


# etcd-manager's walkthrough (docs/walkthrough.md of the original), its three daemons' flags.
WALKTHROUGH_DAEMONS = [
    f"--insecure --etcd-insecure --address 127.0.0.{n} --etcd-address 127.0.0.{n} --cluster-name=test "
    f"--backup-store=file:///tmp/etcd-manager/backups/test --data-dir=/tmp/etcd-manager/data/test/{n} "
    f"--client-urls=http://127.0.0.{n}:4001 --quarantine-client-urls=http://127.0.0.{n}:8001 "
    f"--peer-urls=http://127.0.0.{n}:2380"
    for n in (1, 2, 3)
]


def test_the_seed_walkthrough_lines_parse_unchanged() -> None:
    for n, line in enumerate(WALKTHROUGH_DAEMONS, 1):
        c = config(shlex.split(line))
        assert c.peer_tls is PeerTls.OFF and c.etcd_insecure and c.pki_dir is None
        assert c.address == c.etcd_address == f"127.0.0.{n}"
        assert c.client_urls == (f"http://127.0.0.{n}:4001",)
        assert c.data_dir == Path(f"/tmp/etcd-manager/data/test/{n}")
        assert c.discovery_store == "file:///tmp/discovery"  # as the original hard-codes it
        assert c.hosts_file is None and c.peers == ()


def test_booleans_take_go_spellings() -> None:
    assert config([*BASE[:2], "--insecure=true", "-etcd-insecure=1"]).peer_tls is PeerTls.OFF
    c = config([*BASE[:2], "--insecure=false", "--etcd-insecure=True", "--pki-dir=/p", "-containerized=f"])
    assert c.peer_tls is PeerTls.ON and c.etcd_insecure and c.pki_dir == Path("/p")


def test_a_bad_boolean_and_an_unknown_flag_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "invalid boolean value 'yes' for --insecure" in one_line_refusal([*BASE, "--insecure=yes"], capsys)
    assert "unknown flag --bogus" in one_line_refusal([*BASE, "--bogus=1"], capsys)
    assert "unknown flag -bogus" in one_line_refusal([*BASE, "-bogus"], capsys)
    # docopt would take an unambiguous prefix; Go does not.
    assert "unknown flag --cluster-nam" in one_line_refusal([*BASE, "--cluster-nam=x"], capsys)
    assert "needs a value" in one_line_refusal([*BASE, "--data-dir"], capsys)
    assert "does not fit" in one_line_refusal([*BASE, "extra"], capsys)


def test_every_flag_of_the_original_daemon_is_accepted() -> None:
    # cmd/etcd-manager/main.go, klog.InitFlags included.
    original = [
        "--etcd-address=127.0.0.1",
        "--address=127.0.0.1",
        "--peer-urls=http://__address__:2380",
        "--grpc-port=8000",
        "--etcd-manager-metrics-port=8081",
        "--listen-metrics-urls=http://__address__:8083",
        "--client-urls=http://__address__:4001",
        "--quarantine-client-urls=http://__address__:8001",
        "--cluster-name=test",
        "--backup-store=file:///tmp/store",
        "--backup-interval=15m",
        "--discovery-poll-interval=60s",
        "--data-dir=/tmp/data",
        '--static-config={"etcdVersion":"3.5.21","nodes":[{"id":"a","ip":["127.0.0.2"]}]}',
        "--pki-dir=/tmp/pki",
        "--insecure",
        "--etcd-insecure",
        "--volume-provider=external",
        "--volume-name-tag=name",
        "--dns-suffix=.internal",
        "--volume-tag=test--",
        "--network-cidr=10.0.0.0/8",
        "--env-file=/dev/null",
        "--containerized=false",
        "--v=6",
        "--vmodule=x=2",
        "--logtostderr",
        "--alsologtostderr=true",
        "--stderrthreshold=INFO",
        "--log_dir=/tmp",
        "--log_file=/tmp/x.log",
        "--log_file_max_size=1800",
        "--skip_headers",
        "--skip_log_headers",
        "--add_dir_header",
        "--one_output",
        "--log_backtrace_at=x.go:1",
        "--legacy_stderr_threshold_behavior=false",
    ]
    c = config(original)
    assert c.metrics_port == 8081
    assert c.listen_metrics_urls == ("http://127.0.0.1:8083",)
    assert c.peers == (SeedAddress("127.0.0.2"),) and c.static_config is not None
    assert "--vmodule" in c.unused_flags and "--network-cidr" in c.unused_flags


def test_a_repeated_flag_keeps_the_last_value_as_go_does() -> None:
    c = config([*BASE, "--data-dir=/a", "--data-dir", "/b", "-data-dir=/c"])
    assert c.data_dir == Path("/c")


def test_the_original_environment_variables_are_honoured_and_shown_in_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert config(BASE).cert_duration == timedelta(days=730)
    assert config(BASE, {"ETCD_MANAGER_CERT_DURATION": "1y"}).cert_duration == timedelta(days=365)
    assert config(BASE, {"ETCD_MANAGER_CERT_DURATION": "90d"}).cert_duration == timedelta(days=90)
    assert config(
        [*BASE, "--cert-duration=2h"], {"ETCD_MANAGER_CERT_DURATION": "1y"}
    ).cert_duration == timedelta(hours=2)
    retention = config(
        BASE, {"ETCD_MANAGER_HOURLY_BACKUPS_RETENTION": "2d", "ETCD_MANAGER_DAILY_BACKUPS_RETENTION": "30d"}
    ).retention
    assert retention.hourly == timedelta(days=2) and retention.daily == timedelta(days=30)
    assert daemon_cmd.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in (
        "ETCD_MANAGER_CERT_DURATION",
        "ETCD_MANAGER_HOURLY_BACKUPS_RETENTION",
        "ETCD_MANAGER_DAILY_BACKUPS_RETENTION",
    ):
        assert name in out


def test_a_bad_environment_value_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETCD_MANAGER_CERT_DURATION", "forever")
    assert "ETCD_MANAGER_CERT_DURATION" in one_line_refusal(BASE, capsys)
    monkeypatch.delenv("ETCD_MANAGER_CERT_DURATION")
    monkeypatch.setenv("ETCD_MANAGER_DAILY_BACKUPS_RETENTION", "2 years")
    assert "ETCD_MANAGER_DAILY_BACKUPS_RETENTION" in one_line_refusal(BASE, capsys)


def test_env_file_lines_as_the_original_reads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "# settings\n\nETCD_QUOTA_BACKEND_BYTES=10737418240\n  S3_REGION = eu-west-1\nA=b=c\n"
    assert parse_env_file(text, "f") == {
        "ETCD_QUOTA_BACKEND_BYTES": "10737418240",
        "S3_REGION": " eu-west-1",
        "A": "b=c",
    }
    with pytest.raises(EnvFileError, match="line 1: missing '='"):
        parse_env_file("JUSTAKEY\n", "f")
    with pytest.raises(EnvFileError, match="line 2: invalid key"):
        parse_env_file("A=1\n1X=2\n", "f")


def test_env_file_feeds_the_daemon_before_its_flags_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "etcd.env"
    env_file.write_text("ETCD_MANAGER_CERT_DURATION=not-a-duration\n")
    monkeypatch.setenv("ETCD_MANAGER_CERT_DURATION", "2y")  # the file overrides it; restored after
    err = one_line_refusal([*BASE, f"--env-file={env_file}"], capsys)
    assert "ETCD_MANAGER_CERT_DURATION" in err
    assert daemon_cmd.main([*BASE, f"--env-file={tmp_path}/missing"]) == 1
    assert "cannot read env file" in capsys.readouterr().err


def test_hosts_file_is_on_where_member_names_are_used() -> None:
    assert config(BASE).hosts_file is None
    assert config([*BASE, "--dns-suffix=internal"]).hosts_file == Path("/etc/hosts")
    assert config([*BASE, "--peer-urls=http://__name__:2380"]).hosts_file == Path("/etc/hosts")
    assert config([*BASE, "--dns-suffix=internal", "--hosts-file=none"]).hosts_file is None
    assert config([*BASE, "--hosts-file=/tmp/h"]).hosts_file == Path("/tmp/h")


def test_without_a_pki_folder_the_default_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "etc-kubernetes-pki-etcd-manager"
    monkeypatch.setattr(daemon_cmd, "DEFAULT_PKI_DIR", missing)
    args = ["--cluster-name=test", f"--backup-store=file://{tmp_path}/store", f"--data-dir={tmp_path}/data"]
    err = one_line_refusal(args, capsys)
    assert str(missing) in err and "pki init" in err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "provider", ["aws", "gce", "azure", "openstack", "do", "hetzner", "linode", "scaleway"]
)
def test_cloud_volume_providers_are_refused(provider: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_refusal([*BASE, f"--volume-provider={provider}", "--volume-tag=x"], capsys)
    assert "--data-dir" in err and "--peer-id" in err


def test_external_provider_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert "one --volume-tag" in one_line_refusal([*BASE, "--volume-provider=external"], capsys)
    assert "only external" in one_line_refusal([*BASE, "--volume-provider=nfs"], capsys)
    assert "contradicts" in one_line_refusal(
        [*BASE, "--volume-provider=external", "--volume-tag=x", "--peer-id=a"], capsys
    )
    assert "is not a CIDR" in one_line_refusal([*BASE, "--network-cidr=ten"], capsys)


def test_peers_by_address(capsys: pytest.CaptureFixture[str]) -> None:
    c = config([*BASE, "--peers=10.0.0.1, 10.0.0.2:8010,[fd00::3]:8000,fd00::4,node5.example.com:9000"])
    assert c.peers == (
        SeedAddress("10.0.0.1"),
        SeedAddress("10.0.0.2", 8010),
        SeedAddress("fd00::3", 8000),
        SeedAddress("fd00::4"),
        SeedAddress("node5.example.com", 9000),
    )
    # Peers named by address: the shared default folder is not used unless asked for.
    assert c.discovery_store is None
    assert config([*BASE, "--peers=10.0.0.1", "--discovery-store=file:///d"]).discovery_store == "file:///d"
    assert "--peers" in one_line_refusal([*BASE, "--peers=10.0.0.1:99999"], capsys)
    assert "--peers" in one_line_refusal([*BASE, "--peers=bad host"], capsys)


def test_static_config_as_the_original_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    doc = '{"EtcdVersion":"3.5.21","NODES":[{"Id":"a","IP":["10.0.0.1"]},{"id":"b","ip":["10.0.0.2"]}],"x":1}'
    c = config([*BASE, f"--static-config={doc}", "--address=10.0.0.2", "--insecure-allow-network"])
    assert c.static_config is not None
    assert c.static_config.spec.member_count == 2 and c.static_config.spec.etcd_version == "3.5.21"
    assert c.static_config.id_at("10.0.0.2") == "b" and c.static_config.id_at("10.0.0.9") is None
    assert c.peers == (SeedAddress("10.0.0.1"), SeedAddress("10.0.0.2"))
    for bad, why in [
        ("{", "not JSON"),
        ('{"etcdVersion":"3.5.21"}', "nodes"),
        ('{"etcdVersion":"latest","nodes":[{"id":"a","ip":["10.0.0.1"]}]}', "etcdVersion"),
        ('{"etcdVersion":"3.5.21","nodes":[{"id":"a","ip":[]}]}', "no address"),
        ('{"etcdVersion":"3.5.21","nodes":[{"id":"a","ip":["x"]},{"id":"a","ip":["y"]}]}', "share an id"),
        ('{"etcdVersion":"3.5.21","nodes":[{"id":"../a","ip":["10.0.0.1"]}]}', "id"),
    ]:
        assert why in one_line_refusal([*BASE, f"--static-config={bad}"], capsys), bad


def test_metrics_flags_are_kept() -> None:
    c = config(
        [*BASE, "--address=127.0.0.5", "--listen-metrics-urls=http://__address__:8083,http://__name__:8084"]
    )
    assert c.listen_metrics_urls == ("http://127.0.0.5:8083", "http://__name__:8084")
    assert c.node_config().listen_metrics_urls == c.listen_metrics_urls
    assert config(BASE).metrics_port is None


def test_listen_metrics_urls_reach_etcd() -> None:
    c = config([*BASE, "--address=127.0.0.5", "--listen-metrics-urls=http://__address__:8083"])
    me = own_node(c.node_config(), PeerId("p1"))
    state = EtcdState(EtcdCluster(ClusterToken("tok"), (me,)), etcd_version="3.5.30")
    binaries = EtcdBinaries("3.5.30", Path("/opt/e/etcd"), Path("/opt/e/etcdctl"), None)
    launch = build_launch(c.node_config(), DataLayout(Path("/data")), me, state, binaries)
    assert build_env(launch, {})["ETCD_LISTEN_METRICS_URLS"] == "http://127.0.0.5:8083"


@pytest.mark.parametrize("mode", ["daemon", "ctl", "pki", "backup", "dump"])
def test_every_usage_defines_only_well_formed_flags(mode: str) -> None:
    """A help line that starts with a dash would define a flag by accident."""
    module = importlib.import_module(f"etcdmgr.cli.{mode}_cmd")
    for flag in flag_table(module.USAGE):
        assert re.fullmatch(r"--?[A-Za-z0-9][A-Za-z0-9_-]*", flag), (mode, flag)
