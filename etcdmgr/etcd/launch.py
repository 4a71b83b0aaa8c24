"""How one etcd member is started: the launch description and the environment etcd gets. Pure.

etcd is configured only through ETCD_* environment variables, never flags, so that variables
already set in the daemon's environment can override what we set (as etcd-manager allows)
without etcd refusing a flag/variable conflict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from etcdmgr.etcd.versions import EtcdBinaries, has_v2_api, version_key
from etcdmgr.model.tls import TLSFiles

# Variables the manager must own: identity, membership, addresses and certificates change
# between starts (quarantine ports, restores, TLS reissue). A parent value for one of these is
# dropped (and logged), because inheriting e.g. a fixed port or initial cluster made the
# original's restores loop on a port conflict. ETCD_CONFIG_FILE and discovery are dropped because
# etcd would ignore our variables or bootstrap elsewhere. Every other ETCD_* in the parent wins.
MANAGED_ENV = frozenset(
    {
        "ETCD_NAME",
        "ETCD_DATA_DIR",
        "ETCD_WAL_DIR",
        "ETCD_LISTEN_PEER_URLS",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        "ETCD_LISTEN_CLIENT_URLS",
        "ETCD_ADVERTISE_CLIENT_URLS",
        "ETCD_INITIAL_CLUSTER",
        "ETCD_INITIAL_CLUSTER_STATE",
        "ETCD_INITIAL_CLUSTER_TOKEN",
        "ETCD_FORCE_NEW_CLUSTER",
        "ETCD_CONFIG_FILE",
        "ETCD_DISCOVERY",
        "ETCD_DISCOVERY_SRV",
        "ETCD_DISCOVERY_SRV_NAME",
        "ETCD_DISCOVERY_FALLBACK",
        "ETCD_DISCOVERY_PROXY",
        "ETCD_CERT_FILE",
        "ETCD_KEY_FILE",
        "ETCD_TRUSTED_CA_FILE",
        "ETCD_CLIENT_CERT_AUTH",
        "ETCD_AUTO_TLS",
        "ETCD_PEER_CERT_FILE",
        "ETCD_PEER_KEY_FILE",
        "ETCD_PEER_TRUSTED_CA_FILE",
        "ETCD_PEER_CLIENT_CERT_AUTH",
        "ETCD_PEER_AUTO_TLS",
    }
)


@dataclass(frozen=True)
class EtcdLaunch:
    """Everything needed to start one member once."""

    name: str
    binaries: EtcdBinaries
    data_dir: Path
    listen_peer_urls: Sequence[str]
    advertise_peer_urls: Sequence[str]
    listen_client_urls: Sequence[str]
    advertise_client_urls: Sequence[str]
    initial_cluster: Mapping[str, Sequence[str]]  # member name -> its peer URLs
    initial_cluster_token: str
    initial_cluster_state: Literal["new", "existing"] = "new"
    enable_v2: bool = True  # only where the version has a v2 API
    peer_tls: TLSFiles | None = None
    client_tls: TLSFiles | None = None
    force_new_cluster: bool = False
    listen_metrics_urls: Sequence[str] = field(default_factory=tuple)


def format_initial_cluster(initial_cluster: Mapping[str, Sequence[str]]) -> str:
    """{'a': ['http://x:2380']} -> 'a=http://x:2380' (a name repeats once per URL)."""
    return ",".join(f"{name}={url}" for name, urls in initial_cluster.items() for url in urls)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _our_env(launch: EtcdLaunch) -> dict[str, str]:
    env = {
        "ETCD_NAME": launch.name,
        "ETCD_DATA_DIR": str(launch.data_dir),
        "ETCD_LISTEN_PEER_URLS": ",".join(launch.listen_peer_urls),
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": ",".join(launch.advertise_peer_urls),
        "ETCD_LISTEN_CLIENT_URLS": ",".join(launch.listen_client_urls),
        "ETCD_ADVERTISE_CLIENT_URLS": ",".join(launch.advertise_client_urls),
        "ETCD_INITIAL_CLUSTER": format_initial_cluster(launch.initial_cluster),
        "ETCD_INITIAL_CLUSTER_STATE": launch.initial_cluster_state,
        "ETCD_INITIAL_CLUSTER_TOKEN": launch.initial_cluster_token,
    }
    version = launch.binaries.version
    if has_v2_api(version):
        env["ETCD_ENABLE_V2"] = _bool(launch.enable_v2)
    if version_key(version) >= (3, 4, 0):
        # 3.4 defaults to capnslog and 3.5 rejects it: one log format from 3.4 on.
        env["ETCD_LOGGER"] = "zap"
        # 3.5's default, off in 3.4 (3.3 has no such flag): without it a member cut off for a
        # while campaigns at ever higher terms and, when it is back, deposes a working leader.
        env["ETCD_PRE_VOTE"] = "true"
    if launch.force_new_cluster:
        env["ETCD_FORCE_NEW_CLUSTER"] = "true"
    if launch.listen_metrics_urls:
        env["ETCD_LISTEN_METRICS_URLS"] = ",".join(launch.listen_metrics_urls)
    if t := launch.client_tls:
        env |= {
            "ETCD_CERT_FILE": str(t.cert),
            "ETCD_KEY_FILE": str(t.key),
            "ETCD_TRUSTED_CA_FILE": str(t.ca),
            "ETCD_CLIENT_CERT_AUTH": _bool(t.client_cert_auth),
        }
    if t := launch.peer_tls:
        env |= {
            "ETCD_PEER_CERT_FILE": str(t.cert),
            "ETCD_PEER_KEY_FILE": str(t.key),
            "ETCD_PEER_TRUSTED_CA_FILE": str(t.ca),
            "ETCD_PEER_CLIENT_CERT_AUTH": _bool(t.client_cert_auth),
        }
    return env


def build_env(launch: EtcdLaunch, parent_env: Mapping[str, str]) -> dict[str, str]:
    """The environment for etcd: the parent's, plus our ETCD_* settings where the parent has none.

    Parent ETCD_* variables win (e.g. ETCD_ENABLE_V2=false, ETCD_QUOTA_BACKEND_BYTES), except
    those in MANAGED_ENV, which are always ours (or absent).
    """
    env = {k: v for k, v in parent_env.items() if k not in MANAGED_ENV}
    for key, value in _our_env(launch).items():
        env.setdefault(key, value)
    return env


def ignored_parent_env(parent_env: Mapping[str, str]) -> list[str]:
    """Names of parent ETCD_* variables that build_env drops (worth a warning)."""
    return sorted(k for k in parent_env if k in MANAGED_ENV)


# Go's strconv.ParseBool, as etcd reads a boolean variable.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# Switches that weaken what etcd promises: every ETCD_UNSAFE_* (3.5's --unsafe-no-fsync
# acknowledges writes before they are on disk), a forced new cluster (drops the membership),
# and peer certificates not checked against the address they come from.
_UNSAFE_WHEN_ON = ("ETCD_FORCE_NEW_CLUSTER", "ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION")
# Checks that must stay on: without it etcd takes membership changes that lose quorum, and the
# planner is left the only guard.
_UNSAFE_WHEN_OFF = ("ETCD_STRICT_RECONFIG_CHECK",)


def unsafe_parent_env(parent_env: Mapping[str, str]) -> list[str]:
    """`NAME=value` of the parent's ETCD_* settings that weaken etcd's durability or safety,
    sorted. A value etcd would not read as a boolean counts as set, the safe way round."""
    unsafe = [
        k
        for k, v in parent_env.items()
        if ((k.startswith("ETCD_UNSAFE_") or k in _UNSAFE_WHEN_ON) and v not in _GO_FALSE)
        or (k in _UNSAFE_WHEN_OFF and v not in _GO_TRUE)
    ]
    return [f"{k}={parent_env[k]}" for k in sorted(unsafe)]
