"""Process plumbing of the local stack: pid files, ports, detached start, stop.

There is no supervisor: each server is a plain background process in its own session whose
pid sits in a file under the stack folder, so ``bestand stack down`` run from another terminal
(or after the starting process has exited) still finds and stops exactly what ``up`` started.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bestand.stack.exceptions import StackError

__all__ = [
    "LOOPBACK",
    "ComponentStatus",
    "LogFn",
    "ServerProcess",
    "exit_code",
    "find_project_dir",
    "free_port",
    "free_ports",
    "pid_alive",
    "port_bindable",
    "port_open",
    "process_cmdline",
    "read_pid",
    "remove_pid",
    "start_detached",
    "tail",
    "terminate",
    "write_pid",
]

#: Every server of the local stack listens here only: nothing is reachable from outside.
LOOPBACK = "127.0.0.1"

#: How progress reaches the person: ``print`` in the CLI, a logger in the tests.
LogFn = Callable[[str], None]

#: The file that marks the project checkout (the Kafka version pin lives there).
_PROJECT_MARKER = Path("deploy", "local", "kafka", "pom.xml")

# Children spawned by this Python process, and the exit codes of those already reaped. Plain
# pids, not Popen objects: the servers are meant to outlive the CLI that started them, and a
# Popen dropped while its child still runs warns about it. We reap them ourselves, so an ended
# server never lingers as a zombie that ``kill(pid, 0)`` would call alive.
_spawned: set[int] = set()
_exit_codes: dict[int, int] = {}
_children_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """What ``bestand stack status`` shows for one server."""

    name: str
    #: True when the pid file under the stack folder points at a live process of ours.
    managed: bool
    pid: int | None
    #: Something holds the port (ours, or an external server), or our process is starting.
    running: bool
    #: A real client call (Kafka metadata, Redis PING) succeeded.
    answering: bool
    address: str
    detail: str


# --- pid files -------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in ``path``, or None when the file is missing or does not hold a pid."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if pid > 0 else None


def write_pid(path: Path, pid: int) -> None:
    """Write ``pid`` atomically, so a concurrent reader never sees half a number."""
    if pid <= 0:
        raise ValueError(f"not a pid: {pid}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    tmp.replace(path)


def remove_pid(path: Path) -> None:
    """Remove the pid file if it is there."""
    path.unlink(missing_ok=True)


# --- processes -------------------------------------------------------------------------------


def _reap(pid: int) -> None:
    """Collect the exit status of a child of ours that has ended (no-op otherwise)."""
    with _children_lock:
        if pid not in _spawned:
            return
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere; its exit code is gone
            _spawned.discard(pid)
            return
        if done == pid:
            _spawned.discard(pid)
            _exit_codes[pid] = os.waitstatus_to_exitcode(status)


def exit_code(pid: int) -> int | None:
    """Exit code of a process this Python process started and that has ended, else None."""
    _reap(pid)
    with _children_lock:
        return _exit_codes.get(pid)


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie)?"""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # no /proc (macOS) or it just ended; kill() said it exists
    # Format: "pid (comm) state ...", and comm may itself contain ") ".
    state = stat.rpartition(")")[2].split(maxsplit=1)[:1]
    return state != ["Z"]


def process_cmdline(pid: int) -> str | None:
    """The command line of ``pid`` joined by spaces, None if it cannot be read.

    Used to make sure a pid from a pid file still is our server and not an unrelated process
    that got the same pid after a reboot.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # /proc works, so the process is gone
    except OSError:
        return None
    else:
        return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()
    try:  # no /proc: ask ps (macOS, BSD)
        out = subprocess.run(
            ["ps", "-ww", "-p", str(pid), "-o", "command="],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def start_detached(
    argv: Sequence[str],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` detached, output appended to ``log_file``; return its pid.

    stdin is /dev/null, stdout and stderr go to ``log_file``. A new session (``setsid``, what
    ``start_new_session=True`` does for Popen): Ctrl-C in the terminal that ran ``bestand stack
    up`` does not reach the servers, and they outlive it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    args = list(argv)
    if cwd is not None:  # posix_spawn has no cwd: a shell changes folder, then becomes argv
        if shutil.which(args[0]) is None:
            raise StackError(f"cannot start {args[0]}: not found or not executable")
        args = ["/bin/sh", "-c", 'cd -- "$0" && exec "$@"', str(cwd), *args]
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        with _children_lock:
            pid = os.posix_spawnp(
                args[0],
                args,
                dict(os.environ if env is None else env),
                file_actions=file_actions,
                setsid=True,
            )
            _spawned.add(pid)
            _exit_codes.pop(pid, None)  # an earlier child may have had the same pid
    except OSError as exc:
        raise StackError(f"cannot start {argv[0]}: {exc}") from exc
    return pid


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    return True


def terminate(pid: int, *, timeout: float = 30.0) -> bool:
    """Stop ``pid`` with SIGTERM, and SIGKILL its process group after ``timeout`` seconds.

    SIGTERM first so Kafka and Redis flush and close their logs (a clean restart needs no
    recovery). Returns True when it had to kill hard.
    """
    killed = False
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            killed = True
            try:
                group = os.getpgid(pid)
            except ProcessLookupError:
                group = -1
            with contextlib.suppress(ProcessLookupError):
                # Its own group (start_new_session): take helpers such as Redis' AOF rewrite
                # child with it. Never our own group.
                if group == pid and group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
    _reap(pid)
    return killed


# --- ports -----------------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` different free ports: held open together, so none is handed out twice."""
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def port_bindable(port: int, host: str = LOOPBACK) -> bool:
    """Could a server listen on ``host:port`` now?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections on ``host:port``?"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- files -----------------------------------------------------------------------------------


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip("\n")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"


def find_project_dir(start: Path | None = None) -> Path:
    """The project checkout: the first folder holding ``deploy/local/kafka/pom.xml``.

    Searched upward from ``start`` (default: the current directory), then from this module's
    file, so both ``bestand`` run inside the checkout and an editable install find it.
    """
    bases = [(start or Path.cwd()).resolve(), Path(__file__).resolve().parent]
    for base in bases:
        for folder in (base, *base.parents):
            if (folder / _PROJECT_MARKER).is_file():
                return folder
    raise StackError(
        f"cannot find {_PROJECT_MARKER} in {bases[0]}, {bases[1]} or any folder above them; "
        "run bestand from the project checkout (the local stack needs its deploy/local files)"
    )


# --- one server ------------------------------------------------------------------------------


class ServerProcess(abc.ABC):
    """One server of the local stack: started detached, found again through its pid file.

    Subclasses say how to install, launch and probe the server; this class decides whether
    to start at all (ours already running, an external server on the port, a squatter), waits
    for a real client call to succeed, and stops only what its pid file names.
    """

    #: Human name in messages: "Kafka", "Redis".
    name: str = ""

    def __init__(
        self,
        *,
        port: int,
        pid_file: Path,
        log_file: Path,
        log: LogFn,
        host: str = LOOPBACK,
    ) -> None:
        self.host = host
        self.port = port
        self.pid_file = pid_file
        self.log_file = log_file
        self._log = log
        self._launched_at: float | None = None

    @property
    def address(self) -> str:
        """``host:port`` the server listens on."""
        return f"{self.host}:{self.port}"

    # --- what subclasses provide -------------------------------------------------------------

    @abc.abstractmethod
    def install(self) -> None:
        """Make the server's binaries available (idempotent, quick when done before)."""

    @abc.abstractmethod
    def is_answering(self) -> bool:
        """Does a real client call to the server succeed right now?"""

    @abc.abstractmethod
    def _launch(self) -> int:
        """Prepare config and data folders, start the server detached, return its pid."""

    @abc.abstractmethod
    def _is_our_process(self, cmdline: str) -> bool:
        """Does this command line belong to the server this object starts?"""

    def _other_ports(self) -> dict[int, str]:
        """Further ports the server will listen on, with a name for error messages."""
        return {}

    def running_port(self, pid: int) -> int | None:
        """The port our running process ``pid`` was started with, None when unknown."""
        del pid
        return None

    # --- shared behaviour --------------------------------------------------------------------

    def managed_pid(self) -> int | None:
        """Pid of the live server that this stack started, None if there is none."""
        pid = read_pid(self.pid_file)
        if pid is None or not pid_alive(pid):
            return None
        cmdline = process_cmdline(pid)
        if cmdline is not None and not self._is_our_process(cmdline):
            return None  # the pid was reused by an unrelated process
        return pid

    def _clear_stale_pid_file(self) -> bool:
        if self.pid_file.exists() and self.managed_pid() is None:
            remove_pid(self.pid_file)
            return True
        return False

    def status(self) -> ComponentStatus:
        """Look, do not touch: pid file, port and a client call."""
        pid = self.managed_pid()
        listening = port_open(self.port, self.host)
        answering = listening and self.is_answering()
        running_port = None if pid is None else self.running_port(pid)
        if running_port is not None and running_port != self.port:
            detail = f"started by bestand on port {running_port}, not on {self.port} as configured"
        elif pid is not None:
            detail = "started by bestand" if answering else "started by bestand, not answering"
        elif answering:
            detail = "external: not started by bestand, left alone by down"
        elif listening:
            detail = f"port {self.port} is taken by something that does not answer as {self.name}"
        else:
            detail = "stopped"
        return ComponentStatus(
            name=self.name,
            managed=pid is not None,
            pid=pid,
            running=pid is not None or listening,
            answering=answering,
            address=self.address,
            detail=detail,
        )

    def start(self) -> bool:
        """Start the server unless it runs already; True when a process was started.

        A server on the port that this stack did not start is used as it is ("external") when
        it answers; a port held by anything else is an error, never a second server.
        """
        pid = self.managed_pid()
        if pid is not None:
            running_port = self.running_port(pid)
            if running_port is not None and running_port != self.port:
                raise StackError(
                    f"{self.name} of this stack already runs on port {running_port} (pid {pid}), "
                    f"not on {self.port} as configured now; run 'bestand stack down' first"
                )
            self._log(f"{self.name} already running on {self.address} (pid {pid})")
            return False
        self._clear_stale_pid_file()
        if port_open(self.port, self.host):
            if self.is_answering():
                self._log(
                    f"{self.name} on {self.address} was not started by bestand: using it as it "
                    "is (external; down leaves it alone)"
                )
                return False
            raise StackError(
                f"port {self.port} on {self.host} is taken by a process that does not answer "
                f"as {self.name}; stop that process or configure another port for {self.name}"
            )
        for other, what in self._other_ports().items():
            if not port_bindable(other, self.host):
                raise StackError(
                    f"port {other} on {self.host} ({what}) is taken by another process; "
                    "stop that process or configure another port"
                )
        self.install()
        self._log(f"starting {self.name} on {self.address}…")
        self._launched_at = time.monotonic()
        pid = self._launch()
        write_pid(self.pid_file, pid)
        return True

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until a real client call succeeds; fail early when our process dies."""
        deadline = time.monotonic() + timeout
        pid = read_pid(self.pid_file)
        delay = 0.1
        while True:
            if pid is not None and not pid_alive(pid):
                code = exit_code(pid)
                remove_pid(self.pid_file)
                self._launched_at = None
                how = "" if code is None else f" with exit code {code}"
                raise StackError(
                    f"{self.name} exited during start{how}; last 30 lines of {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            if port_open(self.port, self.host) and self.is_answering():
                if self._launched_at is not None:
                    took = time.monotonic() - self._launched_at
                    self._log(f"{self.name} ready in {took:.1f} s")
                    self._launched_at = None
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{self.name} on {self.address} did not answer within {timeout:.0f} s "
                    f"(it is left running; 'bestand stack down' stops it); last 30 lines of "
                    f"{self.log_file}:\n{tail(self.log_file)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server if this stack started it; True when a process was stopped."""
        pid = self.managed_pid()
        if pid is None:
            if self._clear_stale_pid_file():
                self._log(f"{self.name} was not running (removed its stale pid file)")
            elif port_open(self.port, self.host):
                self._log(f"{self.name} on {self.address} was not started by bestand: left alone")
            else:
                self._log(f"{self.name} is not running")
            return False
        self._log(f"stopping {self.name} (pid {pid})…")
        began = time.monotonic()
        killed = terminate(pid, timeout=timeout)
        remove_pid(self.pid_file)
        took = time.monotonic() - began
        if killed:
            self._log(f"{self.name} did not stop within {timeout:.0f} s: killed")
        else:
            self._log(f"{self.name} stopped in {took:.1f} s")
        return True
