"""`etcdmgr pki`: create the CAs once, and issue client certificates for etcd's client port."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from etcdmgr.cli.exits import run_mode
from etcdmgr.cli.goflags import UsageError, parse
from etcdmgr.model.durations import parse_human_duration
from etcdmgr.model.errors import InvalidData
from etcdmgr.pki import ALL_CAS, CLIENTS_CA, init_pki_dir, issue_leaf, load_or_create_ca
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
                <name>.key in --pki-dir (mode 0700, keys 0600). Copy the folder to every
                host's --pki-dir. Refuses a folder that exists and is not empty. With --rsa
                the CAs are ones etcd-manager itself loads (it takes RSA keys only).
  client-cert   Issue a certificate from etcd-clients-ca with which an operator or an API
                server can talk to etcd's client port. Writes <NAME>.crt, <NAME>.key and
                ca.crt (the CA bundle to verify etcd's server certificates) to --out.

Options:
  --pki-dir=DIR          Folder holding the CA files.
  --rsa                  Make RSA 2048 keys instead of ECDSA P-256, in the files and PEM
                         forms of kops and etcd-manager (RSA PRIVATE KEY, CERTIFICATE): for
                         a pki folder etcd-manager can use too (to go back to it), and for
                         old clients.
  --name=NAME            Common name of the client certificate, also its file name.
  --out=DIR              Folder to write the client certificate, its key and ca.crt to.
  --duration=DURATION    Lifetime of the client certificate: a Go duration (8760h) or a
                         number of days or years (90d, 2y) [default: 1y].
  -h --help              Show this help.
"""


def main(argv: Sequence[str]) -> int:
    return run_mode("pki", lambda: _main(argv))


def _main(argv: Sequence[str]) -> None:
    args = parse(USAGE, "pki", argv)
    pki_dir = Path(str(args["--pki-dir"]))
    if args["init"]:
        _init(pki_dir, bool(args["--rsa"]))
    else:
        _client_cert(pki_dir, str(args["--name"]), Path(str(args["--out"])), str(args["--duration"]))


def _init(pki_dir: Path, rsa: bool) -> None:
    init_pki_dir(pki_dir)
    for name in ALL_CAS:
        ca = load_or_create_ca(pki_dir, name, create=True, rsa=rsa)
        print(f"created {ca.cert_path} and {ca.key_path}")


def _client_cert(pki_dir: Path, name: str, out: Path, duration_text: str) -> None:
    try:
        duration = parse_human_duration(duration_text)
    except InvalidData as e:
        raise UsageError(f"--duration: {e}") from None
    if duration.total_seconds() <= 0:
        raise UsageError(f"--duration must be positive, got {duration_text!r}")
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"--name {name!r} cannot be used as a file name")
    ca = load_or_create_ca(pki_dir, CLIENTS_CA, create=False)
    cert_path, key_path = issue_leaf(
        ca, out, name, name, [], [], server=False, client=True, duration=duration
    )
    bundle_path = out / "ca.crt"
    write_atomic(bundle_path, ca.cert_path.read_bytes())
    print(f"wrote {cert_path}, {key_path} and {bundle_path}")
