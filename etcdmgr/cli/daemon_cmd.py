"""`etcdmgr daemon`: run the manager beside one etcd member."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from etcdmgr.cli.env_file import read_env_file
from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import KLOG_FLAGS, KLOG_OPTIONS, UsageError, parse
from etcdmgr.cli.store_flags import store_ca_file
from etcdmgr.daemon.config import DaemonConfig, PeerTls, expand_url, insecure_address_problem
from etcdmgr.discovery.external_volumes import (
    DEFAULT_SEEDS_DIR,
    DEFAULT_VOLUMES_DIR,
    ExternalVolumes,
    default_route_address,
    host_path,
)
from etcdmgr.discovery.seeds import parse_peers
from etcdmgr.discovery.static_config import parse_static_config
from etcdmgr.etcd.launch import unsafe_parent_env
from etcdmgr.model.durations import parse_setting
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import parse_cluster_name, parse_peer_id
from etcdmgr.model.values import parse_ip
from etcdmgr.ops.logs import LogFormat, log_level_from, parse_log_level
from etcdmgr.store.retention import retention_from_env

USAGE = (
    """\
Run the manager beside one etcd member: it finds its peers, takes part in electing a leader,
and runs, stops, joins and restores the local etcd as the leader directs.

Usage:
  etcdmgr daemon [options]
  etcdmgr daemon -h | --help

Flags are read as the original etcd-manager reads them: one dash or two (`-cluster-name=test`
is `--cluster-name=test`), `--flag value` or `--flag=value`, booleans alone or as
`--flag=true` / `--flag=false`; the last of a repeated flag wins. Every flag of the original
is accepted; a flag not listed here is refused.

Required options:
  --cluster-name=NAME        Name of the cluster; every peer call carries it and peers of
                             another cluster are refused.
  --backup-store=URL         Backup store, the source of truth while etcd is down:
                             file:///path, s3://bucket/prefix, gs://bucket/prefix or
                             azureblob://container/prefix; credentials from the environment:
                             AWS_* (or kops' S3_ENDPOINT, S3_ACCESS_KEY_ID,
                             S3_SECRET_ACCESS_KEY), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*.

URLs are comma separated; __address__ becomes the value of --address, and __name__ the
member name (the peer id) plus the DNS suffix.

Address options:
  --address=IP               This host's address, used for the peer API and in URLs (default:
                             127.0.0.1; with --volume-provider=external, the source address of
                             the host's default route).
  --etcd-address=IP          Address etcd binds its listeners to [default: 0.0.0.0].
  --peer-urls=URLS           etcd peer URLs [default: __scheme__://__address__:2380].
  --client-urls=URLS         etcd client URLs [default: __scheme__://__address__:4001].
  --quarantine-client-urls=URLS
                             Client URLs used while the cluster is quarantined (during a restore
                             and a logical version change), so that clients cannot reach it
                             [default: __scheme__://__address__:8001].
  --listen-metrics-urls=URLS
                             Extra URLs on which etcd serves /metrics and /health (passed to
                             etcd as its own flag of that name).
  --peer-port=PORT           Port of the manager's own peer API [default: 8000].
  --grpc-port=PORT           Same as --peer-port (the original's name).
  --dns-suffix=SUFFIX        Suffix for member names used in __name__ URLs [default: ].
  --hosts-file=PATH          Keep a managed block of member names in this hosts file. On by
                             default (/etc/hosts), as in the original, when a URL uses __name__
                             or --dns-suffix is given; --hosts-file=none turns it off.

Peer options (how the daemons find each other):
  --peers=ADDRESSES          Peer addresses, comma separated: IPs or host names, with :PORT
                             when not --peer-port (IPv6 as [::1]:8000). Each is pinged and the
                             peer's id learned from its answer (with TLS: from its certificate),
                             so no shared folder is needed. List every host; this one may be
                             listed too. Peers also learn of each other from the ones they reach.
  --static-config=JSON       The original's fixed cluster, e.g. {"etcdVersion":"3.5.21",
                             "nodes":[{"id":"etcd-a","ip":["10.0.0.1"]},...]}. The nodes'
                             addresses are pinged as --peers are. The spec is fixed: as many
                             members as nodes, of that version (ctl configure-cluster and queued
                             commands are not used). A cluster is created only by a leader whose
                             data dir holds a file named please-create-new-cluster, which it then
                             removes. A host whose address is listed takes the id listed with it
                             when its data dir has no id yet.
  --seeds-dir=DIR            A folder whose file names are peer IP addresses (kops' seeds
                             folder), read at each discovery poll and pinged as --peers are.
                             With --volume-provider=external and no --static-config the default
                             is /etc/kubernetes/etcd-manager/seeds.
  --discovery-store=URL      Where peers announce themselves, one record per node: a folder
                             shared by every host or an object store prefix, as --backup-store
                             (default file:///tmp/discovery, as the original; not used with the
                             flags --peers, --static-config, --seeds-dir or an external volume
                             provider unless given).

Storage options:
  --data-dir=DIR             Where this node keeps its id, state, etcd data and logs [default: /data].
  --peer-id=ID               This node's id (its etcd member name). For a data dir that
                             etcd-manager ran on a cloud volume, whose id was the volume's name:
                             give it once and it is kept in the data dir's myid; refused when
                             myid names another id.
  --store-ca-file=FILE       CA certificates (PEM) to trust for an object store's endpoint,
                             besides the system's (default: $AWS_CA_BUNDLE or $SSL_CERT_FILE).
  --etcd-bin-dir=DIRS        Extra directories holding etcd-v<VERSION>*/ binaries (comma separated);
                             /opt/etcd-v<VERSION>-linux-amd64/ and /opt/etcd-v<VERSION>/ are
                             always searched.

Volume options (the original's; only the external provider, kops' bare-metal layout):
  --volume-provider=NAME     external: the data dir is <volumes-dir>/<NAME>/mnt for the one
                             folder whose NAME starts with the --volume-tag, and NAME is this
                             node's id; peers come from --seeds-dir or --static-config. Cloud
                             providers (aws, gce, azure, openstack, do, hetzner, linode,
                             scaleway) are refused: mount the volume yourself and pass --data-dir
                             (and --peer-id to keep the id).
  --volume-tag=TAG           The external provider's folder name prefix (given once). May be
                             repeated, as for cloud providers.
  --volume-name-tag=TAG      Accepted and not used (cloud providers only).
  --volumes-dir=DIR          Where the external provider looks for volume folders (default:
                             /mnt/disks).
  --network-cidr=CIDR        Accepted and not used (OpenStack only).
  --containerized            The host's / is mounted at /rootfs (as kops runs the original):
                             the default volumes and seeds folders are read below it.

Security options:
  --insecure                 Plain websockets for the peer API (no mutual TLS): callers are not
                             authenticated, so it is served only on a loopback --address
                             (127.0.0.0/8, ::1) and calls only loopback peers. Demo only.
                             Same as --peer-tls=off.
  --peer-tls=MODE            on: mutual TLS only (the default without --insecure). prefer: for
                             moving a running insecure cluster to TLS one daemon at a time:
                             serves TLS and plain websockets on one port and calls peers with
                             TLS first; plain websockets only with loopback addresses. off: the
                             same as --insecure.
  --insecure-allow-network   Let --insecure or --peer-tls=prefer speak plain websockets with
                             other hosts. Anyone who reaches the peer port can then act as any
                             peer: lead, stop etcd, restore an old backup. Logged as a warning.
  --etcd-insecure            Run etcd over http without certificates. Demo only.
  --allow-unsafe-etcd-env    Pass on ETCD_* variables that weaken etcd's durability or safety
                             (any ETCD_UNSAFE_*, such as ETCD_UNSAFE_NO_FSYNC;
                             ETCD_STRICT_RECONFIG_CHECK=false;
                             ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION). Without it
                             the daemon refuses to start while one is set, and while
                             ETCD_FORCE_NEW_CLUSTER is (which it never passes on). Logged as a
                             warning.
  --pki-dir=DIR              Directory holding the CAs (etcd-manager-ca, etcd-peers-ca,
                             etcd-clients-ca; see `etcdmgr pki init`). Default, when TLS is on:
                             /etc/kubernetes/pki/etcd-manager, as in the original.
  --cert-duration=DURATION   Lifetime of the leaf certificates this node issues itself (17520h,
                             730d or 2y); they are reissued when a third of it is left (default:
                             ETCD_MANAGER_CERT_DURATION, else 2y).

Durations are written as Go writes them: 20s, 15m, 1h30m.

Timing options:
  --backup-interval=DURATION
                             How often the leader backs up etcd [default: 15m].
  --backup-drill-interval=DURATION
                             After a backup, at most this often, an idle node or a follower
                             restores it into a throw-away etcd and checks it holds what the
                             live member held; 0 turns these restore drills off [default: 1h].
  --discovery-poll-interval=DURATION
                             How often the discovery store and the seeds are read [default: 60s].
  --cycle-interval=DURATION  Longest pause between two leader control cycles; the leader also
                             wakes at once when a peer appears or the spec changes [default: 10s].
  --ping-interval=DURATION   How often peers ping each other [default: 1s].
  --peer-timeout=DURATION    A peer not heard from for this long is unhealthy [default: 4s].
  --replace-after=DURATION   A member unhealthy this long with no daemon behind it is replaced
                             by an idle peer, when one waits [default: 60s].
  --store-timeout=DURATION   Longest wait for one call to the backup store or the discovery
                             folder (a hung mount then fails the call instead of freezing the
                             daemon); copying a backup gets this plus 1 s per MB [default: 10s].
  --leader-stall-timeout=DURATION
                             A node whose control loop makes no progress this long (its store
                             cannot be read, or every cycle fails) is not fit to lead: a leader
                             steps down and the next id leads; a follower warns when no leader
                             has asserted itself for this long. At least twice --cycle-interval
                             and --store-timeout [default: 60s].

Other options:
  --env-file=FILE            Read KEY=VALUE lines (blank lines and # comments skipped) into the
                             environment before anything else, as the original does.

Operations options:
  --etcd-manager-metrics-port=PORT
                             Serve /metrics (Prometheus), /healthz (the daemon answers) and
                             /readyz (its etcd member serves clients) over plain HTTP on this
                             port (off by default).
  --metrics-address=IP       Address of that port (the --address if not given).
  --log-format=FORMAT        text, or json: one object per line [default: text].
  --log-level=LEVEL          debug, info, warning or error (default: info, or debug with
                             klog's --v=4 or more).

Run by systemd (Type=notify), the daemon says when it is ready and pings the watchdog.

Environment:
  ETCD_*                     Any ETCD_* variable set for the daemon overrides what it would set
                             for etcd, except the ones it manages (its name, URLs, cluster,
                             certificates: ignored with a warning) and the ones that weaken etcd
                             (refused, see --allow-unsafe-etcd-env).
  ETCD_MANAGER_CERT_DURATION Lifetime of the leaf certificates without --cert-duration (2y).
  ETCD_MANAGER_HOURLY_BACKUPS_RETENTION
                             How long the earliest backup of each hour is kept (7d).
  ETCD_MANAGER_DAILY_BACKUPS_RETENTION
                             How long the earliest backup of each day is kept (2y).
  Every backup younger than an hour is kept; the others are deleted (at most hourly). Values:
  a number of days or years (7d, 2y) or a Go duration (168h).
"""
    + KLOG_OPTIONS
)

DEFAULT_DISCOVERY_STORE = "file:///tmp/discovery"
DEFAULT_PKI_DIR = Path("/etc/kubernetes/pki/etcd-manager")
DEFAULT_HOSTS_FILE = Path("/etc/hosts")
DEFAULT_CERT_DURATION = "2y"
CERT_DURATION_ENV = "ETCD_MANAGER_CERT_DURATION"
CLOUD_PROVIDERS = frozenset(
    {"aws", "gce", "azure", "openstack", "do", "hetzner", "linode", "scaleway", "alicloud"}
)
REPEATABLE = ("--volume-tag",)
# Accepted for the original's command lines, with nothing to do here: named in one log line.
UNUSED = ("--volume-name-tag", "--network-cidr", *(f for f in KLOG_FLAGS if f != "--v"))


def _urls(text: str, address: str, scheme: str) -> tuple[str, ...]:
    return tuple(
        expand_url(u.strip().replace("__scheme__", scheme), address) for u in text.split(",") if u.strip()
    )


def _peer_tls(mode: str, insecure: bool) -> PeerTls:
    if insecure:
        if mode not in ("", PeerTls.OFF):
            raise UsageError(f"--insecure turns peer TLS off; it contradicts --peer-tls={mode}")
        return PeerTls.OFF
    try:
        return PeerTls(mode or PeerTls.ON)
    except ValueError:
        raise UsageError(f"--peer-tls must be on, prefer or off, got {mode!r}") from None


def _external_volumes(
    args: Mapping[str, object], provider: str, containerized: bool
) -> ExternalVolumes | None:
    if not provider:
        return None
    if provider in CLOUD_PROVIDERS:
        raise UsageError(
            f"--volume-provider={provider}: etcdmgr does not attach cloud volumes; mount the volume "
            "yourself and pass --data-dir=<its mount point> (and --peer-id=<the member name it holds>)"
        )
    if provider != "external":
        raise UsageError(f"unknown --volume-provider {provider!r}: only external is supported")
    tags = args.get("--volume-tag")
    if not isinstance(tags, list) or len(tags) != 1:
        raise UsageError(
            "--volume-provider=external takes one --volume-tag: the prefix of its volume folder's name"
        )
    folder = args.get("--volumes-dir")
    root = (
        Path(folder) if isinstance(folder, str) and folder else host_path(DEFAULT_VOLUMES_DIR, containerized)
    )
    return ExternalVolumes(root.absolute(), tags[0])


def _hosts_file(text: object, urls: Sequence[str], dns_suffix: str) -> Path | None:
    if text is None:  # not given: on where member names are used, as the original always keeps it
        uses_names = dns_suffix or any("__name__" in u for u in urls)
        return DEFAULT_HOSTS_FILE if uses_names else None
    return None if text in ("", "none") else Path(str(text))


def _port(text: str, flag: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"{flag} must be a port number, got {text!r}")
    return int(text)


def _log_settings(fmt: str, level: str, klog_v: str) -> tuple[LogFormat, int]:
    """--log-format and --log-level; without --log-level, klog's --v (kops passes --v=6)."""
    if fmt not in {f.value for f in LogFormat}:
        raise UsageError(f"--log-format must be text or json, got {fmt!r}")
    if not level and klog_v:
        if not klog_v.isdigit():
            raise UsageError(f"--v must be a number, got {klog_v!r}")
        return LogFormat(fmt), log_level_from(int(klog_v))
    try:
        return LogFormat(fmt), parse_log_level(level or "info")
    except ValueError as e:
        raise UsageError(f"--log-level: {e}") from None


def config_from_args(args: Mapping[str, object], environ: Mapping[str, str]) -> DaemonConfig:
    def opt(name: str) -> str:
        value = args.get(name)
        return value if isinstance(value, str) else ""

    containerized = bool(args.get("--containerized"))
    external = _external_volumes(args, opt("--volume-provider"), containerized)
    address = opt("--address") or ("127.0.0.1" if external is None else default_route_address() or "")
    if not address:
        raise UsageError("cannot tell this host's address (no default route): give --address")
    scheme = "http" if args.get("--etcd-insecure") else "https"
    peer_tls = _peer_tls(opt("--peer-tls"), bool(args.get("--insecure")))
    etcd_insecure = bool(args.get("--etcd-insecure"))
    needs_pki = peer_tls is not PeerTls.OFF or not etcd_insecure
    log_format, log_level = _log_settings(opt("--log-format"), opt("--log-level"), opt("--v"))
    metrics_port, metrics_address = opt("--etcd-manager-metrics-port"), opt("--metrics-address")
    try:
        static = parse_static_config(opt("--static-config")) if opt("--static-config") else None
        peers = parse_peers(opt("--peers")) + (static.seeds() if static else ())
        if opt("--seeds-dir"):
            seeds_dir: Path | None = Path(opt("--seeds-dir")).absolute()
        elif external is not None and static is None:
            seeds_dir = host_path(DEFAULT_SEEDS_DIR, containerized)
        else:
            seeds_dir = None
        by_address = bool(peers or seeds_dir or external)
        discovery_store = args.get("--discovery-store")
        if not isinstance(discovery_store, str):
            discovery_store = None if by_address else DEFAULT_DISCOVERY_STORE
        peer_id = parse_peer_id(opt("--peer-id"), "--peer-id") if opt("--peer-id") else None
        if peer_id is not None and external is not None:
            raise UsageError(
                "--peer-id contradicts --volume-provider=external: the volume folder's name is the id"
            )
        if opt("--network-cidr"):
            try:
                ipaddress.ip_network(opt("--network-cidr"), strict=False)
            except ValueError:
                raise UsageError(f"--network-cidr: {opt('--network-cidr')!r} is not a CIDR") from None
        url_flags = {
            name: _urls(opt(name), address, scheme)
            for name in ("--peer-urls", "--client-urls", "--quarantine-client-urls", "--listen-metrics-urls")
        }
        dns_suffix = opt("--dns-suffix")
        config = DaemonConfig(
            cluster_name=parse_cluster_name(opt("--cluster-name"), "--cluster-name"),
            address=parse_ip(address, "--address"),
            etcd_address=opt("--etcd-address"),
            peer_urls=url_flags["--peer-urls"],
            client_urls=url_flags["--client-urls"],
            quarantine_client_urls=url_flags["--quarantine-client-urls"],
            listen_metrics_urls=url_flags["--listen-metrics-urls"],
            backup_store=opt("--backup-store"),
            discovery_store=discovery_store,
            store_ca_file=store_ca_file(args),
            data_dir=Path(opt("--data-dir")).absolute(),
            peer_port=_port(opt("--grpc-port") or opt("--peer-port"), "--peer-port"),
            pki_dir=Path(opt("--pki-dir")).absolute()
            if opt("--pki-dir")
            else DEFAULT_PKI_DIR
            if needs_pki
            else None,
            peer_tls=peer_tls,
            insecure_allow_network=bool(args.get("--insecure-allow-network")),
            etcd_insecure=etcd_insecure,
            etcd_bin_dirs=tuple(Path(d) for d in opt("--etcd-bin-dir").split(",") if d),
            backup_interval=parse_setting(opt("--backup-interval"), "--backup-interval"),
            backup_drill_interval=None
            if opt("--backup-drill-interval") == "0"
            else parse_setting(opt("--backup-drill-interval"), "--backup-drill-interval"),
            discovery_poll_interval=parse_setting(
                opt("--discovery-poll-interval"), "--discovery-poll-interval"
            ),
            cycle_interval=parse_setting(opt("--cycle-interval"), "--cycle-interval"),
            ping_interval=parse_setting(opt("--ping-interval"), "--ping-interval"),
            peer_timeout=parse_setting(opt("--peer-timeout"), "--peer-timeout"),
            replace_after=parse_setting(opt("--replace-after"), "--replace-after"),
            store_timeout=parse_setting(opt("--store-timeout"), "--store-timeout"),
            leader_stall_timeout=parse_setting(opt("--leader-stall-timeout"), "--leader-stall-timeout"),
            dns_suffix=dns_suffix,
            hosts_file=_hosts_file(
                args.get("--hosts-file"), [u for us in url_flags.values() for u in us], dns_suffix
            ),
            cert_duration=_cert_duration(opt("--cert-duration"), environ),
            etcd_env={k: v for k, v in environ.items() if k.startswith("ETCD_")},
            peers=peers,
            seeds_dir=seeds_dir,
            static_config=static,
            external_volumes=external,
            peer_id=peer_id,
            retention=retention_from_env(environ),
            unused_flags=_unused(args, external),
            metrics_port=_port(metrics_port, "--etcd-manager-metrics-port") if metrics_port else None,
            metrics_address=parse_ip(metrics_address, "--metrics-address") if metrics_address else None,
            log_format=log_format,
            log_level=log_level,
            allow_unsafe_etcd_env=bool(args.get("--allow-unsafe-etcd-env")),
        )
    except InvalidData as e:
        raise UsageError(str(e)) from None
    if config.peer_timeout < 2 * config.ping_interval:
        # A timeout within two pings makes peers flap between healthy and not.
        raise UsageError("--peer-timeout must be at least twice --ping-interval")
    if config.leader_stall_timeout < 2 * max(config.cycle_interval, config.store_timeout):
        # One slow store call or one long pause between cycles is no stall.
        raise UsageError("--leader-stall-timeout must be at least twice --cycle-interval and --store-timeout")
    return config


def _unused(args: Mapping[str, object], external: ExternalVolumes | None) -> tuple[str, ...]:
    names = [*UNUSED, *(["--volume-tag"] if external is None else [])]
    return tuple(name for name in names if args.get(name) not in (None, False, []))


def _cert_duration(flag: str, environ: Mapping[str, str]) -> timedelta:
    if flag:
        return parse_setting(flag, "--cert-duration", days_and_years=True)
    if environ.get(CERT_DURATION_ENV):
        return parse_setting(environ[CERT_DURATION_ENV], CERT_DURATION_ENV, days_and_years=True)
    return parse_setting(DEFAULT_CERT_DURATION, "--cert-duration", days_and_years=True)


def main(argv: Sequence[str]) -> int:
    return run_mode("daemon", lambda: _main(argv))


def _main(argv: Sequence[str]) -> int:
    args = parse(USAGE, "daemon", argv, required=("--cluster-name", "--backup-store"), repeatable=REPEATABLE)
    env_file = args.get("--env-file")
    if isinstance(env_file, str) and env_file:
        os.environ.update(read_env_file(Path(env_file)))
    config = config_from_args(args, os.environ)
    problem = insecure_address_problem(config.address, config.peer_tls, config.insecure_allow_network)
    if problem is not None:
        raise UsageError(problem)
    unsafe = unsafe_parent_env(config.etcd_env)
    if unsafe and not config.allow_unsafe_etcd_env:
        raise UsageError(
            f"{', '.join(unsafe)} would weaken etcd's durability or safety (writes acknowledged "
            "before they are on disk, membership changes that lose quorum, a forced new cluster, "
            "unchecked peer certificates); unset it, or add --allow-unsafe-etcd-env to accept that"
        )
    if config.pki_dir is not None and not config.pki_dir.is_dir():
        what = "TLS is on" if args.get("--pki-dir") is None else "it was given"
        raise UsageError(
            f"--pki-dir {config.pki_dir} does not exist ({what}): give --pki-dir holding the CAs "
            "(see `etcdmgr pki init`), or --insecure --etcd-insecure for a demo"
        )
    from etcdmgr.daemon.run import run_daemon

    return run_daemon(config)
