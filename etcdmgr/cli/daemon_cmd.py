"""`etcdmgr daemon`: run the manager beside one etcd member."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from etcdmgr.cli.goflags import UsageError, parse
from etcdmgr.daemon.config import DaemonConfig, expand_url
from etcdmgr.model.durations import parse_duration
from etcdmgr.model.errors import InvalidData

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
  --backup-store=URL         Backup store, the source of truth while etcd is down
                             (file:///path).

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
  --discovery-store=URL      Where peers announce themselves, one file per node
                             [default: file:///tmp/discovery].
  --etcd-bin-dir=DIRS        Extra directories holding etcd-v<VERSION>*/ binaries (comma separated);
                             /opt/etcd-v<VERSION>-linux-amd64/ and /opt/etcd-v<VERSION>/ are
                             always searched.

Security options:
  --insecure                 Plain websockets for the peer API (no mutual TLS). Demo only.
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


def _positive(flag: str, value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise UsageError(f"{flag} must be positive")
    return value


def config_from_args(args: Mapping[str, object], environ: Mapping[str, str]) -> DaemonConfig:
    def opt(name: str) -> str:
        value = args.get(name)
        return value if isinstance(value, str) else ""

    address = opt("--address")
    scheme = "http" if args.get("--etcd-insecure") else "https"
    try:
        port_text = opt("--grpc-port") or opt("--peer-port")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"--peer-port must be a port number, got {port_text!r}")
        return DaemonConfig(
            cluster_name=opt("--cluster-name"),
            address=address,
            etcd_address=opt("--etcd-address"),
            peer_urls=_urls(opt("--peer-urls"), address, scheme),
            client_urls=_urls(opt("--client-urls"), address, scheme),
            quarantine_client_urls=_urls(opt("--quarantine-client-urls"), address, scheme),
            backup_store=opt("--backup-store"),
            discovery_store=opt("--discovery-store"),
            data_dir=Path(opt("--data-dir")).absolute(),
            peer_port=int(port_text),
            pki_dir=Path(opt("--pki-dir")).absolute() if opt("--pki-dir") else None,
            insecure=bool(args.get("--insecure")),
            etcd_insecure=bool(args.get("--etcd-insecure")),
            etcd_bin_dirs=tuple(Path(d) for d in opt("--etcd-bin-dir").split(",") if d),
            backup_interval=parse_duration(opt("--backup-interval")),
            discovery_poll_interval=parse_duration(opt("--discovery-poll-interval")),
            cycle_interval=parse_duration(opt("--cycle-interval")),
            ping_interval=parse_duration(opt("--ping-interval")),
            peer_timeout=parse_duration(opt("--peer-timeout")),
            replace_after=parse_duration(opt("--replace-after")),
            store_timeout=_positive("--store-timeout", parse_duration(opt("--store-timeout"))),
            dns_suffix=opt("--dns-suffix"),
            hosts_file=Path(opt("--hosts-file")) if opt("--hosts-file") else None,
            cert_duration=parse_duration(opt("--cert-duration")),
            etcd_env={k: v for k, v in environ.items() if k.startswith("ETCD_")},
        )
    except InvalidData as e:
        raise UsageError(str(e)) from None


def main(argv: Sequence[str]) -> int:
    try:
        args = parse(USAGE, "daemon", argv)
        for required in ("--cluster-name", "--backup-store"):
            if not args.get(required):
                raise UsageError(f"{required} is required (see --help)")
        config = config_from_args(args, os.environ)
        if not config.insecure and config.pki_dir is None:
            raise UsageError("the peer API uses mutual TLS: give --pki-dir, or --insecure for a demo")
        if not config.etcd_insecure and config.pki_dir is None:
            raise UsageError(
                "etcd runs with TLS: give --pki-dir (see `etcdmgr pki init`), or --etcd-insecure for a demo"
            )
    except UsageError as e:
        print(f"etcdmgr daemon: {e}", file=sys.stderr)
        return 2
    from etcdmgr.daemon.run import run_daemon

    return run_daemon(config)
