"""Certificate expiry for the metrics: the longest-lived certificate of each file that exists."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from etcdmgr.pki.ca import ca_paths, load_or_create_ca
from etcdmgr.pki.expiry import expiries
from etcdmgr.pki.files import init_pki_dir
from etcdmgr.pki.keys import load_certs, write_certs
from etcdmgr.pki.leaf import issue_leaf


def test_each_existing_file_gives_the_end_of_its_longest_lived_certificate(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init_pki_dir(pki)
    ca = load_or_create_ca(pki, "etcd-manager-ca", create=True)
    leaf, _ = issue_leaf(ca, tmp_path / "leaf", "short", "short", [], [], True, False, timedelta(days=1))
    bundle = ca_paths(pki, "etcd-manager-ca")[0]
    write_certs(bundle, [*load_certs(leaf), ca.cert])  # e.g. an old CA kept beside the new one
    (tmp_path / "garbage.crt").write_text("not a certificate")
    files = {"ca": bundle, "leaf": leaf, "missing": tmp_path / "nope.crt", "garbage": tmp_path / "garbage.crt"}
    assert expiries(files) == {
        "ca": ca.cert.not_valid_after_utc.timestamp(),
        "leaf": load_certs(leaf)[0].not_valid_after_utc.timestamp(),
    }
    assert expiries(files)["leaf"] < expiries(files)["ca"] - 86400 * 365
