#!/usr/bin/env python3
"""Does writing etcd's output through the daemon (a pipe, copied to a rotated etcd.log by a
thread: etcd/output.py) slow etcd down, against etcd writing to the file itself?

Usage: python3 benchmarks/etcd_output.py [--version 3.5.30] [--puts 3000] [--writers 8]
       [--runs 3] [--level debug] [--ip 127.0.79.1]

Each run starts one etcd both ways in turn (log level --level; debug logs every request, so the
copy is loaded far beyond what info level asks of it) and times --puts single-key puts from
--writers concurrent clients through the v3 JSON gateway. Prints puts/s per way (best of
--runs), the log bytes each wrote, and the ratio pipe/file (target >= 0.95).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from etcd_helpers import START_TIMEOUT, launch  # noqa: E402
from figures import Figure, Skipped  # noqa: E402

from etcdmgr.etcd.client import EtcdClient  # noqa: E402
from etcdmgr.etcd.launch import EtcdLaunch, build_env  # noqa: E402
from etcdmgr.etcd.process import EtcdProcess  # noqa: E402
from etcdmgr.etcd.versions import find_binaries  # noqa: E402

RATIO_TARGET = 0.95


def put_load(ip: str, puts: int, writers: int) -> float:
    """Seconds for `puts` puts spread over `writers` keep-alive connections."""
    value = base64.b64encode(b"x" * 100).decode()

    def writer(w: int) -> None:
        conn = http.client.HTTPConnection(ip, 4001, timeout=30)
        for i in range(w, puts, writers):
            key = base64.b64encode(f"bench/{i:08d}".encode()).decode()
            conn.request("POST", "/v3/kv/put", json.dumps({"key": key, "value": value}))
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    return time.perf_counter() - started


async def healthy(member: EtcdLaunch) -> None:
    client = EtcdClient(member.advertise_client_urls, member.binaries)
    with trio.fail_after(START_TIMEOUT):
        while not await client.endpoint_health(member.advertise_client_urls[0]):  # noqa: ASYNC110 (polls etcd)
            await trio.sleep(0.05)


async def through_pipe(
    member: EtcdLaunch, env: dict[str, str], args: argparse.Namespace
) -> tuple[float, int]:
    async with await EtcdProcess.start(member, member.data_dir.parent, parent_env=env):
        await healthy(member)
        seconds = await trio.to_thread.run_sync(put_load, args.ip, args.puts, args.writers)
    return seconds, (member.data_dir.parent / "etcd.log").stat().st_size


async def to_file(member: EtcdLaunch, env: dict[str, str], args: argparse.Namespace) -> tuple[float, int]:
    log = member.data_dir.parent / "etcd.log"
    member.data_dir.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = await trio.lowlevel.open_process(
            [str(member.binaries.etcd)], env=build_env(member, env), stdout=out, stderr=out
        )
    try:
        await healthy(member)
        seconds = await trio.to_thread.run_sync(put_load, args.ip, args.puts, args.writers)
    finally:
        proc.terminate()
        await proc.wait()
    return seconds, log.stat().st_size


async def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="3.5.30")
    parser.add_argument("--puts", type=int, default=3000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--level", default="debug")
    parser.add_argument("--ip", default="127.0.79.1")
    args = parser.parse_args(argv)
    binaries = find_binaries(args.version)
    if binaries is None:
        raise Skipped(f"etcd {args.version} is not installed")
    env = {**os.environ, "ETCD_LOG_LEVEL": args.level}
    best: dict[str, float] = {}
    logged: dict[str, int] = {}
    work = Path(tempfile.mkdtemp(prefix="etcd-output-"))
    try:
        for run in range(args.runs):
            for way, fn in (("file", to_file), ("pipe", through_pipe)):
                member = launch(binaries, work / f"{way}-{run}", "m1", args.ip)
                seconds, size = await fn(member, env, args)
                best[way] = max(best.get(way, 0.0), args.puts / seconds)
                logged[way] = size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for way in ("file", "pipe"):
        print(f"{way}: {best[way]:.0f} puts/s (best of {args.runs}), {logged[way] / 1e6:.1f} MB of log")
    print(json.dumps({"file_puts_s": round(best["file"]), "pipe_puts_s": round(best["pipe"]),
                      "ratio": round(best["pipe"] / best["file"], 3), "level": args.level}))  # fmt: skip
    ratio = best["pipe"] / best["file"]
    return [Figure(f"puts/s with etcd's output through the daemon / to a file (log level {args.level})", ratio,
                   "x", target=RATIO_TARGET, target_text=f">= {RATIO_TARGET}", higher_is_better=True)]  # fmt: skip


def figures(quick: bool) -> list[Figure]:
    return trio.run(main, ["--runs", "1" if quick else "3"])


if __name__ == "__main__":
    trio.run(main)
