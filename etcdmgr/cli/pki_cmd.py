"""`etcdmgr pki`: create the CAs once, and issue client certificates for etcd's client port."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from docopt import DocoptExit, docopt

from etcdmgr.model.durations import parse_human_duration
from etcdmgr.model.errors import EtcdmgrError, InvalidData
from etcdmgr.pki import ALL_CAS, CLIENTS_CA, ca_exists, issue_leaf, load_or_create_ca
from etcdmgr.util.atomic import write_atomic

USAGE = """\
Create the certificate authorities the managers use, and client certificates for etcd.

Usage:
  etcdmgr pki init --pki-dir=DIR [--rsa]
  etcdmgr pki client-cert --pki-dir=DIR --name=NAME --out=DIR [--duration=DURATION]
  etcdmgr pki -h | --help

Commands:
  init          Create etcd-manager-ca (peer API between managers), etcd-peers-ca (etcd
                member to member) and etcd-clients-ca (etcd client port) as <name>.crt and
                <name>.key in --pki-dir. Copy the folder to every host's --pki-dir. Refuses
                to overwrite a CA that already exists.
  client-cert   Issue a certificate from etcd-clients-ca with which an operator or an API
                server can talk to etcd's client port. Writes <NAME>.crt, <NAME>.key and
                ca.crt (the CA bundle to verify etcd's server certificates) to --out.

Options:
  --pki-dir=DIR          Folder holding the CA files.
  --rsa                  Make RSA 2048 keys instead of ECDSA P-256 (for old clients).
  --name=NAME            Common name of the client certificate, also its file name.
  --out=DIR              Folder to write the client certificate, its key and ca.crt to.
  --duration=DURATION    Lifetime of the client certificate: a Go duration (8760h) or a
                         number of days or years (90d, 2y) [default: 1y].
  -h --help              Show this help.
"""


def main(argv: Sequence[str]) -> int:
    # The usage names the mode word, so docopt must see it too.
    args_in = ["pki", *argv]
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE, end="")
        return 0
    try:
        args = docopt(USAGE, argv=args_in, default_help=False)
    except DocoptExit as e:
        print(f"etcdmgr pki: missing or unexpected arguments\n{e.usage}", file=sys.stderr)
        return 2
    pki_dir = Path(str(args["--pki-dir"]))
    try:
        if args["init"]:
            return _init(pki_dir, bool(args["--rsa"]))
        return _client_cert(pki_dir, str(args["--name"]), Path(str(args["--out"])), str(args["--duration"]))
    except EtcdmgrError as e:
        print(f"etcdmgr pki: {e}", file=sys.stderr)
        return 1


def _init(pki_dir: Path, rsa: bool) -> int:
    existing = [name for name in ALL_CAS if ca_exists(pki_dir, name)]
    if existing:
        print(
            f"etcdmgr pki: refusing to overwrite existing CA files in {pki_dir}: {', '.join(existing)}",
            file=sys.stderr,
        )
        return 1
    for name in ALL_CAS:
        ca = load_or_create_ca(pki_dir, name, create=True, rsa=rsa)
        print(f"created {ca.cert_path} and {ca.key_path}")
    return 0


def _client_cert(pki_dir: Path, name: str, out: Path, duration_text: str) -> int:
    try:
        duration = parse_human_duration(duration_text)
    except InvalidData as e:
        print(f"etcdmgr pki: --duration: {e}", file=sys.stderr)
        return 2
    if duration.total_seconds() <= 0:
        print(f"etcdmgr pki: --duration must be positive, got {duration_text!r}", file=sys.stderr)
        return 2
    if not name or "/" in name or name.startswith("."):
        print(f"etcdmgr pki: --name {name!r} cannot be used as a file name", file=sys.stderr)
        return 2
    ca = load_or_create_ca(pki_dir, CLIENTS_CA, create=False)
    cert_path, key_path = issue_leaf(
        ca, out, name, name, [], [], server=False, client=True, duration=duration
    )
    bundle_path = out / "ca.crt"
    write_atomic(bundle_path, ca.cert_path.read_bytes())
    print(f"wrote {cert_path}, {key_path} and {bundle_path}")
    return 0
