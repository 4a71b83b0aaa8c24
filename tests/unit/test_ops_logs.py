"""Log lines name the node and whether it leads; JSON lines parse; the level filters; klog's -v maps."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from etcdmgr.ops.logs import LogFormat, log_level_from, parse_log_level, set_log_context, setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    set_log_context("", "", lambda: False)


def test_text_lines_say_which_node_wrote_them_and_whether_it_leads(restore_root: None) -> None:
    out = io.StringIO()
    setup_logging(LogFormat.TEXT, logging.INFO, out)
    log = logging.getLogger("etcdmgr.test")
    log.info("before the id is known")
    leading = [False]
    set_log_context("Ab3x", "test", lambda: leading[0])
    log.warning("a follower says")
    leading[0] = True
    log.info("a leader says")
    lines = out.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" \[-\] INFO etcdmgr\.test: before the id is known", lines[0])
    assert re.fullmatch(stamp + r" \[Ab3x follower\] WARNING etcdmgr\.test: a follower says", lines[1])
    assert re.fullmatch(stamp + r" \[Ab3x leader\] INFO etcdmgr\.test: a leader says", lines[2])


def test_json_lines_parse_and_carry_the_node_the_level_and_a_decision(restore_root: None) -> None:
    out = io.StringIO()
    setup_logging(LogFormat.JSON, logging.DEBUG, out)
    set_log_context("Ab3x", "test", lambda: True)
    log = logging.getLogger("etcdmgr.controller.loop")
    log.info("decision: %s", "AddMember: too few", extra={"action": "AddMember", "reason": "too few"})
    try:
        raise ValueError("a bug\nover two lines")
    except ValueError:
        log.exception("control cycle crashed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first | {"ts": ""} == {
        "ts": "",
        "level": "info",
        "logger": "etcdmgr.controller.loop",
        "msg": "decision: AddMember: too few",
        "peer": "Ab3x",
        "cluster": "test",
        "leader": True,
        "action": "AddMember",
        "reason": "too few",
    }
    assert second["level"] == "error" and "ValueError: a bug" in second["exc"]


def test_the_level_filters_lines(restore_root: None) -> None:
    out = io.StringIO()
    setup_logging(LogFormat.TEXT, parse_log_level("warning"), out)
    logging.getLogger("etcdmgr").info("not shown")
    logging.getLogger("etcdmgr").warning("shown")
    assert "not shown" not in out.getvalue() and "shown" in out.getvalue()


def test_level_names_and_klog_verbosity() -> None:
    assert parse_log_level("DEBUG") == logging.DEBUG
    with pytest.raises(ValueError, match="debug, info, warning, error"):
        parse_log_level("loud")
    assert [log_level_from(v) for v in (0, 2, 3, 4, 6, 10)] == [logging.INFO] * 3 + [logging.DEBUG] * 3
