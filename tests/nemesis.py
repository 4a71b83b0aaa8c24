"""Faults for a soak of real daemons: kills, pauses, partitions, wiped and full disks, a store
that goes away, a clock that jumps. One at a time; each undoes itself, and `heal_all` undoes
whatever is left (call it in a finally).

Partitions drop one node's peer traffic (the manager's peer API and etcd's peer port) with
nftables in the host's own network namespace, so the nodes keep their loopback addresses.
Traffic to the node's address is matched by address; traffic the node starts is matched by the
cgroup of its processes, because on loopback a connection to 127.X.Y.Z leaves from 127.0.0.1
whoever makes it (etcd does not bind its peer dials to its own address). Each daemon is started
in a cgroup of its own (cgroup v2, no controllers: it only names the processes) and its etcd
inherits it. Needs root and the `nft` command.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from harness import PEER_PORT, Cluster, Daemon, wait_for

from etcdmgr.util.clock import OFFSET_FILE_ENV

MANAGER_PORT = 8000  # the daemon's peer API (its default --peer-port, which the harness keeps)
CGROUP_FS = Path("/sys/fs/cgroup")  # nft names cgroups by their path under this folder
FILLER = "soak-filler"


def cgroup2_mount() -> Path:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    raise RuntimeError("no cgroup v2 hierarchy is mounted")


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc; processes that vanish meanwhile are skipped)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def etcd_pid(d: Daemon) -> int | None:
    """The etcd child of daemon `d` (its parent-death wrapper execs etcd, keeping the pid)."""
    if not d.running or d.proc is None:
        return None
    for pid in children(d.proc.pid):
        with suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "etcd":
                return pid
    return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@dataclass
class Cgroups:
    """One cgroup per node under a folder of this run, in the cgroup v2 hierarchy."""

    name: str
    mount: Path = field(default_factory=cgroup2_mount)

    def __post_init__(self) -> None:
        self.root = self.mount / self.name
        self.root.mkdir()

    def node(self, n: int) -> Path:
        path = self.root / f"node{n}"
        path.mkdir(exist_ok=True)
        return path

    def nft_match(self, n: int) -> str:
        """The nft expression matching sockets of node n's processes."""
        path = self.node(n)
        level = len(path.relative_to(self.mount).parts)
        return f'socket cgroupv2 level {level} "{path.relative_to(CGROUP_FS)}"'

    def pids(self) -> list[int]:
        found = []
        for procs in self.root.glob("node*/cgroup.procs"):
            with suppress(OSError):
                found += [int(p) for p in procs.read_text().split()]
        return found

    def remove(self) -> None:
        """Remove the folders; any process of ours still in them is killed first."""
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with suppress(AssertionError):
            wait_for("the run's processes to exit", lambda: not self.pids(), timeout=20)
        for path in [*self.root.glob("node*"), self.root]:
            with suppress(OSError):
                path.rmdir()


class Netfilter:
    """An nftables table of this run's own; partitions are rules in it, removed by `heal`."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._nft(f"add table inet {table}")
        self._nft(f"add chain inet {table} out {{ type filter hook output priority 0 ; }}")
        self._nft(f"add chain inet {table} in {{ type filter hook input priority 0 ; }}")

    @staticmethod
    def available() -> str | None:
        """Why partitions cannot be made here, or None when they can."""
        if os.geteuid() != 0:
            return "partitions need root"
        if shutil.which("nft") is None:
            return "partitions need nft (apt-get install nftables)"
        try:
            cgroup2_mount()
        except RuntimeError as e:
            return f"partitions need cgroup v2: {e}"
        return None

    def _nft(self, command: str) -> None:
        subprocess.run(["nft", command], check=True, capture_output=True, text=True, timeout=10)

    def isolate(self, ip: str, cgroup_match: str) -> None:
        ports = f"{{ {PEER_PORT}, {MANAGER_PORT} }}"
        t = self.table
        # The node still reaches itself (the daemon calls its own peer API from its address).
        self._nft(f"add rule inet {t} out ip saddr {ip} ip daddr {ip} accept")
        self._nft(f"add rule inet {t} in ip saddr {ip} ip daddr {ip} accept")
        self._nft(f"add rule inet {t} out ip daddr {ip} tcp dport {ports} drop")  # to its servers
        self._nft(f"add rule inet {t} out ip saddr {ip} tcp sport {ports} drop")  # from its servers
        self._nft(f"add rule inet {t} out {cgroup_match} tcp dport {ports} drop")  # its dials out
        self._nft(f"add rule inet {t} in {cgroup_match} tcp sport {ports} drop")  # answers to them

    def heal(self) -> None:
        self._nft(f"flush chain inet {self.table} out")
        self._nft(f"flush chain inet {self.table} in")

    def remove(self) -> None:
        self._nft(f"delete table inet {self.table}")


def confine(d: Daemon, cgroups: Cgroups, env: dict[str, str] | None = None) -> None:
    """Make daemon d start in node d.n's cgroup (its etcd inherits it), with `env` added."""
    procs = cgroups.node(d.n) / "cgroup.procs"
    settings = [f"{k}={v}" for k, v in (env or {}).items()]
    d.args = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), "env", *settings, *d.args]


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `path` (a small disk that can be filled), unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> int:
    """Write a filler file into `folder` until its disk is full; the bytes written."""
    written = 0
    chunk = b"\0" * (1 << 20)
    with suppress(OSError), (folder / FILLER).open("wb") as f:
        while True:
            f.write(chunk)
            f.flush()
            written += len(chunk)
    return written


@dataclass
class Nemesis:
    """Seeded faults on the nodes of `cluster`; `log` gets one line per step.

    Each daemon runs in its own cgroup with a clock offset file (see `wrap`), node `full_disk`
    (if any) has its data dir on a small tmpfs."""

    cluster: Cluster
    rng: random.Random
    cgroups: Cgroups
    netfilter: Netfilter | None
    clock_dir: Path
    full_disk: int | None
    log: Callable[[str], None]
    _paused: set[int] = field(default_factory=set)
    _store_away: Path | None = None

    FAULTS = (
        "kill_daemon",
        "kill_etcd",
        "kill_both",
        "stop_daemon",
        "stop_etcd",
        "partition",
        "wipe",
        "store_away",
        "disk_full",
        "clock_jump",
    )

    def wrap(self, d: Daemon) -> None:
        """Start daemon d in its node's cgroup, with its own clock offset file."""
        offset = self.clock_file(d.n)
        offset.write_text("0\n")
        confine(d, self.cgroups, {OFFSET_FILE_ENV: str(offset)})

    def clock_file(self, n: int) -> Path:
        return self.clock_dir / f"clock-offset-{n}"

    def available(self) -> list[str]:
        out = [f for f in self.FAULTS if f != "partition" or self.netfilter is not None]
        return [f for f in out if f != "disk_full" or self.full_disk is not None]

    def run(self, fault: str, hold: float) -> str:
        """Carry out `fault` for about `hold` seconds and undo it; what was done."""
        method: Callable[[float], str] = getattr(self, fault)
        return method(hold)

    # --- targets ---------------------------------------------------------------------------------

    def _node(self) -> Daemon:
        return self.rng.choice(self.cluster.daemons)

    def leader(self) -> Daemon:
        """The daemon that leads: the lowest peer id among running daemons (peer/election.py)."""
        ids = {}
        for d in self.cluster.running_daemons():
            with suppress(OSError):
                ids[d.peer_id()] = d
        return ids[min(ids)]

    # --- faults ----------------------------------------------------------------------------------

    def kill_daemon(self, hold: float) -> str:
        d = self._node()
        etcd = etcd_pid(d)
        d.kill9()
        self._wait_exit(etcd)  # etcd gets SIGTERM from its parent-death signal
        time.sleep(hold)
        d.start()
        return (
            f"kill -9 daemon {d.n} (its etcd stopped by the parent-death signal), restarted after {hold:.0f}s"
        )

    def kill_etcd(self, hold: float) -> str:
        d = self._node()
        etcd = etcd_pid(d)
        if etcd is None:
            return f"daemon {d.n} ran no etcd: nothing killed"
        os.kill(etcd, signal.SIGKILL)
        return f"kill -9 etcd of daemon {d.n} (pid {etcd}); the daemon restarts it"

    def kill_both(self, hold: float) -> str:
        d = self._node()
        etcd = etcd_pid(d)
        if etcd is not None:
            os.kill(etcd, signal.SIGKILL)
        d.kill9()
        self._wait_exit(etcd)
        time.sleep(hold)
        d.start()
        return f"kill -9 etcd and daemon {d.n}, restarted after {hold:.0f}s"

    def stop_daemon(self, hold: float) -> str:
        d = self._node()
        assert d.proc is not None
        self._pause(d.proc.pid, hold)
        return f"SIGSTOP daemon {d.n} for {hold:.0f}s"

    def stop_etcd(self, hold: float) -> str:
        d = self._node()
        etcd = etcd_pid(d)
        if etcd is None:
            return f"daemon {d.n} ran no etcd: nothing stopped"
        self._pause(etcd, hold)
        return f"SIGSTOP etcd of daemon {d.n} for {hold:.0f}s"

    def partition(self, hold: float) -> str:
        assert self.netfilter is not None
        d = self._node()
        self.netfilter.isolate(d.ip, self.cgroups.nft_match(d.n))
        try:
            time.sleep(hold)
        finally:
            self.netfilter.heal()
        return f"partition of node {d.n} (peer API and etcd peer port dropped) for {hold:.0f}s"

    def wipe(self, hold: float) -> str:
        d = self._node()
        keep_id = self.rng.random() < 0.5
        etcd = etcd_pid(d)
        d.kill9()
        self._wait_exit(etcd)
        for entry in list(d.data_dir.iterdir()):
            if keep_id and entry.name == "myid":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        time.sleep(hold)
        d.start()
        kept = "its id kept" if keep_id else "its id too: it comes back as a new peer"
        return f"wipe of node {d.n}'s data dir while down ({kept}), restarted after {hold:.0f}s"

    def store_away(self, hold: float) -> str:
        store = Path(self.cluster.store_url.removeprefix("file://"))
        self._store_away = store.with_name(store.name + ".away")
        os.rename(store, self._store_away)
        try:
            time.sleep(hold)
        finally:
            self._store_back()
        return f"backup store folder moved away for {hold:.0f}s"

    def disk_full(self, hold: float) -> str:
        assert self.full_disk is not None
        d = self.cluster[self.full_disk]
        written = fill(d.data_dir)
        try:
            time.sleep(hold)
        finally:
            (d.data_dir / FILLER).unlink(missing_ok=True)
        return f"node {d.n}'s data disk filled ({written >> 20} MiB) for {hold:.0f}s"

    def clock_jump(self, hold: float) -> str:
        d = self.leader()
        ahead = self.rng.choice([3600, 86400, 30 * 86400])
        behind = self.rng.choice([600, 3600])
        offset = self.clock_file(d.n)
        try:
            offset.write_text(f"{ahead}\n")
            time.sleep(hold)
            offset.write_text(f"-{behind}\n")
            time.sleep(hold / 2)
        finally:
            offset.write_text("0\n")
        return (
            f"leader {d.n}'s clock {ahead}s ahead for {hold:.0f}s, "
            f"then {behind}s behind for {hold / 2:.0f}s, then right"
        )

    # --- undo ------------------------------------------------------------------------------------

    def _pause(self, pid: int, hold: float) -> None:
        os.kill(pid, signal.SIGSTOP)
        self._paused.add(pid)
        try:
            time.sleep(hold)
        finally:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            self._paused.discard(pid)

    def _store_back(self) -> None:
        if self._store_away is not None:
            os.rename(
                self._store_away, self._store_away.with_name(self._store_away.name.removesuffix(".away"))
            )
            self._store_away = None

    @staticmethod
    def _wait_exit(pid: int | None) -> None:
        if pid is not None:
            wait_for(f"etcd (pid {pid}) to exit", lambda: not alive(pid), timeout=30)

    def heal_all(self) -> None:
        """Undo whatever fault is still in force (after an error or an interrupt)."""
        for pid in list(self._paused):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._paused.clear()
        if self.netfilter is not None:
            with suppress(subprocess.CalledProcessError):
                self.netfilter.heal()
        self._store_back()
        for d in self.cluster.daemons:
            self.clock_file(d.n).write_text("0\n")
        if self.full_disk is not None:
            (self.cluster[self.full_disk].data_dir / FILLER).unlink(missing_ok=True)
