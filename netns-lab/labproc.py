"""Processes the lab starts in its namespaces, the commands it runs to build and break them,
and finding/killing processes by namespace."""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import time

from labhost import Host

log = logging.getLogger("vipd.lab")
NETNS_DIR = pathlib.Path("/run/netns")


class LabError(RuntimeError):
    pass


class CommandError(subprocess.CalledProcessError):
    """A failed command in the lab; unlike its base class it shows what the command printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def run_ip(args: list[str], batch: list[str] | None = None, tool: str = "ip") -> None:
    """Runs `ip` (or `tc`) with args, and batch as its -batch input if given."""
    cmd = [tool, *args] + (["-batch", "-"] if batch is not None else [])
    r = subprocess.run(cmd, input="\n".join(batch or []) + "\n", capture_output=True, text=True,
                       timeout=30)
    if r.returncode:
        raise CommandError(r.returncode, cmd, r.stdout, r.stderr + "\n" + "\n".join(batch or []))


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Proc:
    """A process started in a lab namespace, leader of its own process group.

    Its process group is only signalled while the leader is unreaped (running or a zombie),
    so the group id cannot belong to anyone else by then.
    """

    def __init__(self, host: Host, argv: list[str], log_path: pathlib.Path,
                 popen: subprocess.Popen):
        self.host, self.argv, self.log_path, self._popen = host, argv, log_path, popen
        self.pid = popen.pid
        self.socket: str | None = None                  # vipd's control socket
        self.config_path: pathlib.Path | None = None    # vipd's / keepalived's config file

    def __repr__(self) -> str:
        return f"<Proc {self.pid} {self.host.name}: {' '.join(self.argv)[:60]}>"

    def _exited(self) -> bool:
        if self._popen.returncode is not None:
            return True
        try:   # WNOWAIT: look, but leave the zombie so the group id stays ours
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _reap(self) -> None:
        if self._popen.returncode is None:
            _killpg(self.pid, signal.SIGKILL)    # whatever it left behind in its group
            self._popen.wait()

    @property
    def returncode(self) -> int | None:
        self.alive()
        return self._popen.returncode

    def alive(self) -> bool:
        if self._exited():
            self._reap()
            return False
        return True

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Sends sig (waking it if frozen), waits up to timeout, then SIGKILLs the group."""
        if self.alive():
            os.kill(self.pid, sig)
            _killpg(self.pid, signal.SIGCONT)
        end = time.monotonic() + timeout
        while not self._exited() and time.monotonic() < end:
            time.sleep(0.01)
        self._reap()
        return self._popen.returncode

    def kill(self) -> int:
        if self._popen.returncode is None:
            _killpg(self.pid, signal.SIGKILL)
        self._reap()
        return self._popen.returncode

    def freeze(self) -> None:
        """SIGSTOP to the whole group: nginx's workers and keepalived's VRRP child hang too."""
        if self.alive():
            _killpg(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.alive():
            _killpg(self.pid, signal.SIGCONT)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Capture:
    """tcpdump writing a pcap in the bridge namespace; stop() returns the file."""

    def __init__(self, proc: Proc, path: pathlib.Path):
        self.proc, self.path = proc, path

    def stop(self) -> pathlib.Path:
        time.sleep(0.05)    # tcpdump drops what it has not read yet when told to stop
        self.proc.stop(signal.SIGTERM)
        return self.path


def start_time(pid: int) -> int | None:
    try:   # field 22; the command name in field 2 may contain spaces and parentheses
        return int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def listening(pid: int, port: int) -> bool:
    """Whether the namespace of pid has a TCP socket listening on port (no process spawned)."""
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def namespace_keys(names: list[str]) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of each named network namespace that exists: what /proc/PID/ns/net of a
    process inside it stats to, even after the name is deleted."""
    keys = set()
    for n in names:
        with contextlib.suppress(OSError):
            st = os.stat(NETNS_DIR / n)
            keys.add((st.st_dev, st.st_ino))
    return keys


def pids_in(keys: set[tuple[int, int]]) -> list[int]:
    """Live processes (not zombies: their ns links are gone) in any of these namespaces."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            with contextlib.suppress(OSError):
                st = os.stat(f"/proc/{d}/ns/net")
                if (st.st_dev, st.st_ino) in keys:
                    pids.append(int(d))
    return pids


def kill_in_namespaces(names: list[str]) -> list[str]:
    """SIGKILLs every process whose network namespace is one of names (as `ip netns pids`)."""
    keys = namespace_keys(names)
    for _ in range(100):
        pids = pids_in(keys)
        if not pids:
            return []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    return [f"processes still alive in the lab's namespaces: {pids}"]
