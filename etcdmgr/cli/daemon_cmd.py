"""`etcdmgr daemon`: run the manager beside one etcd member."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import UsageError, parse
from etcdmgr.cli.store_flags import store_ca_file
from etcdmgr.daemon.config import DaemonConfig, PeerTls, expand_url, insecure_address_problem
from etcdmgr.model.durations import parse_setting
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import parse_cluster_name
from etcdmgr.model.values import parse_ip

USAGE = """\
Run the manager beside one etcd member: it finds its peers, takes part in electing a leader,
and runs, stops, joins and restores the local etcd as the leader directs.

Usage:
  etcdmgr daemon [options]
  etcdmgr daemon -h | --help

Flags may be written with one dash or two, as the original etcd-manager accepts them
(`-cluster-name=test` is `--cluster-name=test`).

Required options:
  --cluster-name=NAME        Name of the cluster; every peer call carries it and peers of
                             another cluster are refused.
  --backup-store=URL         Backup store, the source of truth while etcd is down:
                             file:///path, s3://bucket/prefix, gs://bucket/prefix or
                             azureblob://container/prefix; credentials from the environment:
                             AWS_* (or kops' S3_ENDPOINT, S3_ACCESS_KEY_ID,
                             S3_SECRET_ACCESS_KEY), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*.

URLs are comma separated; __address__ becomes the value of --address, and __name__ the
member name plus the DNS suffix.

Address options:
  --address=IP               This host's address, used for the peer API and in URLs [default: 127.0.0.1].
  --etcd-address=IP          Address etcd binds its listeners to [default: 0.0.0.0].
  --peer-urls=URLS           etcd peer URLs [default: __scheme__://__address__:2380].
  --client-urls=URLS         etcd client URLs [default: __scheme__://__address__:4001].
  --quarantine-client-urls=URLS
                             Client URLs used while the cluster is quarantined (during create,
                             restore and upgrades), so that clients cannot reach it
                             [default: __scheme__://__address__:8001].
  --peer-port=PORT           Port of the manager's own peer API [default: 8000].
  --grpc-port=PORT           Same as --peer-port (the original's name).
  --dns-suffix=SUFFIX        Suffix for member names used in __name__ URLs [default: ].
  --hosts-file=PATH          Keep a managed block of member names in this hosts file (opt-in).

Storage options:
  --data-dir=DIR             Where this node keeps its id, state, etcd data and logs [default: /data].
  --discovery-store=URL      Where peers announce themselves, one record per node: a folder
                             or an object store prefix, as --backup-store
                             [default: file:///tmp/discovery].
  --store-ca-file=FILE       CA certificates (PEM) to trust for an object store's endpoint,
                             besides the system's (default: $AWS_CA_BUNDLE or $SSL_CERT_FILE).
  --etcd-bin-dir=DIRS        Extra directories holding etcd-v<VERSION>*/ binaries (comma separated);
                             /opt/etcd-v<VERSION>-linux-amd64/ and /opt/etcd-v<VERSION>/ are
                             always searched.

Security options:
  --insecure                 Plain websockets for the peer API (no mutual TLS): callers are not
                             authenticated, so it is served only on a loopback --address
                             (127.0.0.0/8, ::1) and calls only loopback peers. Demo only.
                             Same as --peer-tls=off.
  --peer-tls=MODE            on: mutual TLS only (needs --pki-dir; the default without
                             --insecure). prefer: for moving a running insecure cluster to TLS
                             one daemon at a time: serves TLS and plain websockets on one port
                             and calls peers with TLS first; plain websockets only with loopback
                             addresses. off: the same as --insecure.
  --insecure-allow-network   Let --insecure or --peer-tls=prefer speak plain websockets with
                             other hosts. Anyone who reaches the peer port can then act as any
                             peer: lead, stop etcd, restore an old backup. Logged as a warning.
  --etcd-insecure            Run etcd over http without certificates. Demo only.
  --pki-dir=DIR              Directory holding the CAs (etcd-manager-ca, etcd-peers-ca,
                             etcd-clients-ca; see `etcdmgr pki init`).
  --cert-duration=DURATION   Lifetime of the leaf certificates this node issues itself; they are
                             reissued when a third of it is left [default: 17520h].

Durations are written as Go writes them: 20s, 15m, 1h30m.

Timing options:
  --backup-interval=DURATION
                             How often the leader backs up etcd [default: 15m].
  --discovery-poll-interval=DURATION
                             How often the discovery store is read [default: 60s].
  --cycle-interval=DURATION  Longest pause between two leader control cycles; the leader also
                             wakes at once when a peer appears or the spec changes [default: 10s].
  --ping-interval=DURATION   How often peers ping each other [default: 1s].
  --peer-timeout=DURATION    A peer not heard from for this long is unhealthy [default: 4s].
  --replace-after=DURATION   A member unhealthy this long with no daemon behind it is replaced
                             by an idle peer, when one waits [default: 60s].
  --store-timeout=DURATION   Longest wait for one call to the backup store or the discovery
                             folder (a hung mount then fails the call instead of freezing the
                             daemon); copying a backup gets this plus 1 s per MB [default: 10s].

Environment: any ETCD_* variable set for the daemon overrides what it would set for etcd.
"""


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


def config_from_args(args: Mapping[str, object], environ: Mapping[str, str]) -> DaemonConfig:
    def opt(name: str) -> str:
        value = args.get(name)
        return value if isinstance(value, str) else ""

    def duration(name: str) -> timedelta:
        return parse_setting(opt(name), name)

    address = opt("--address")
    scheme = "http" if args.get("--etcd-insecure") else "https"
    peer_tls = _peer_tls(opt("--peer-tls"), bool(args.get("--insecure")))
    try:
        port_text = opt("--grpc-port") or opt("--peer-port")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"--peer-port must be a port number, got {port_text!r}")
        config = DaemonConfig(
            cluster_name=parse_cluster_name(opt("--cluster-name"), "--cluster-name"),
            address=parse_ip(address, "--address"),
            etcd_address=opt("--etcd-address"),
            peer_urls=_urls(opt("--peer-urls"), address, scheme),
            client_urls=_urls(opt("--client-urls"), address, scheme),
            quarantine_client_urls=_urls(opt("--quarantine-client-urls"), address, scheme),
            backup_store=opt("--backup-store"),
            discovery_store=opt("--discovery-store"),
            store_ca_file=store_ca_file(args),
            data_dir=Path(opt("--data-dir")).absolute(),
            peer_port=int(port_text),
            pki_dir=Path(opt("--pki-dir")).absolute() if opt("--pki-dir") else None,
            peer_tls=peer_tls,
            insecure_allow_network=bool(args.get("--insecure-allow-network")),
            etcd_insecure=bool(args.get("--etcd-insecure")),
            etcd_bin_dirs=tuple(Path(d) for d in opt("--etcd-bin-dir").split(",") if d),
            backup_interval=duration("--backup-interval"),
            discovery_poll_interval=duration("--discovery-poll-interval"),
            cycle_interval=duration("--cycle-interval"),
            ping_interval=duration("--ping-interval"),
            peer_timeout=duration("--peer-timeout"),
            replace_after=duration("--replace-after"),
            store_timeout=duration("--store-timeout"),
            dns_suffix=opt("--dns-suffix"),
            hosts_file=Path(opt("--hosts-file")) if opt("--hosts-file") else None,
            cert_duration=duration("--cert-duration"),
            etcd_env={k: v for k, v in environ.items() if k.startswith("ETCD_")},
        )
    except InvalidData as e:
        raise UsageError(str(e)) from None
    if config.peer_timeout < 2 * config.ping_interval:
        # A timeout within two pings makes peers flap between healthy and not.
        raise UsageError("--peer-timeout must be at least twice --ping-interval")
    return config


def main(argv: Sequence[str]) -> int:
    return run_mode("daemon", lambda: _main(argv))


def _main(argv: Sequence[str]) -> int:
    args = parse(USAGE, "daemon", argv, required=("--cluster-name", "--backup-store"))
    config = config_from_args(args, os.environ)
    if config.peer_tls is not PeerTls.OFF and config.pki_dir is None:
        raise UsageError("the peer API uses mutual TLS: give --pki-dir, or --insecure for a demo")
    problem = insecure_address_problem(config.address, config.peer_tls, config.insecure_allow_network)
    if problem is not None:
        raise UsageError(problem)
    if not config.etcd_insecure and config.pki_dir is None:
        raise UsageError(
            "etcd runs with TLS: give --pki-dir (see `etcdmgr pki init`), or --etcd-insecure for a demo"
        )
    from etcdmgr.daemon.run import run_daemon

    return run_daemon(config)
