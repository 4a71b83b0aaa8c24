"""TLS by default: mutual TLS between managers and for etcd's peer and client ports."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
from collections.abc import Callable

import pytest
from harness import Cluster, http

from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


def test_three_member_tls_cluster_serves_issued_client_certs_only(
    make_cluster: Callable[..., Cluster],
) -> None:
    binaries = find_binaries("3.5.30")
    if binaries is None:
        pytest.skip("etcd 3.5.30 is not installed")
    c = make_cluster(3, tls=True)
    c.configure(3, "3.5.30")
    c.start()
    c.wait_members(3, timeout=120)
    c.put("hello", "world")
    assert c.get("hello", 3) == "world"

    got = subprocess.run(
        [
            str(binaries.etcdctl),
            f"--endpoints={c[2].client_url}",
            *c.etcdctl_tls(),
            "get",
            "/hello",
            "--prefix",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        env={"ETCDCTL_API": "3"},
    )
    assert got.returncode == 0, got.stderr

    # Without a client certificate etcd refuses the connection.
    no_cert = ssl.create_default_context(cafile=str(c.client_dir / "ca.crt"))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        http("GET", f"{c[1].client_url}/v2/keys/hello", context=no_cert)
    assert "mutual TLS" in c[1].log()
