"""docs/monitoring: the alert rules parse and the alerts and the dashboard use only metrics the
daemon serves; the README's metric table lists every one of them."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from etcdmgr.ops.metrics import MemberCounts
from etcdmgr.ops.prometheus import NodeNow, PrometheusRecorder

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
METRIC = re.compile(r"\betcdmgr_[a-z0-9_]+")
REQUIRED_ALERTS = {
    "EtcdmgrNoLeader",
    "EtcdmgrNoRecentBackup",
    "EtcdmgrCertificateExpiringSoon",
    "EtcdmgrMembersBelowSpec",
}


def served() -> tuple[set[str], set[str]]:
    """(metric family names, sample names) a leader serves once every event happened."""
    recorder = PrometheusRecorder(lambda: NodeNow(True, 2, 0, False), timedelta(minutes=15))
    recorder.cycle_started()
    recorder.cluster_seen(MemberCounts(3, 0, 0), 3)
    recorder.backup_taken(1.0, 100)
    recorder.decision("Wait")
    recorder.set_cert_expiry({"etcd-manager-ca": 2e9})
    body, _ = recorder.exposition("")
    families = list(text_string_to_metric_families(body.decode()))
    return {f.name for f in families}, {s.name for f in families for s in f.samples}


def test_the_alert_rules_parse_and_use_only_served_metrics() -> None:
    rules_file = yaml.safe_load((DOCS / "alerts.yaml").read_text())
    rules = [rule for group in rules_file["groups"] for rule in group["rules"]]
    assert REQUIRED_ALERTS <= {r["alert"] for r in rules}
    _, samples = served()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used = set(METRIC.findall(rule["expr"]))
        assert used and used <= samples, f"{rule['alert']} uses {used - samples}"


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def test_the_dashboard_is_json_and_uses_only_served_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    _, samples = served()
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels(dashboard):
        used = {m for t in p["targets"] for m in METRIC.findall(t["expr"])}
        assert used and used <= samples, f"panel {p['title']!r} uses {used - samples}"
        g = p["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert g["x"] + g["w"] <= 24 and not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine


def test_the_readme_lists_every_served_metric() -> None:
    families, _ = served()
    readme = (DOCS / "README.md").read_text()
    listed = set(re.findall(r"^\| `(etcdmgr_[a-z0-9_]+)`", readme, re.MULTILINE))
    names = {f + "_total" if f + "_total" in listed else f for f in families}
    assert names == listed
