"""What a sandbox must have to itself before it touches anything: its data directory and its ports.

A second `make sandbox` in the same checkout used to empty the running one's outbox and only then find
port 4566 taken. A start now claims first and changes nothing until the claim holds:

- the data directory, by an exclusive `flock` on `<data-dir>/sandbox.lock`, held until the sandbox stops.
  The kernel drops the lock when the process ends however it ends (even SIGKILL), so a crash leaves no
  stale lock; the file itself stays (deleting a lock file lets two processes lock two different files)
  and names the holder's PID and ports for the next start's message;
- the SMTP and AWS ports, by listening on them. The AWS socket is handed to moto's server as it is; the
  SMTP one is closed just before aiosmtpd binds the same port (it binds by address only);
- the web view's port, when there is one, by listening on it too; the view serves on that socket.

A refusal is an `Unavailable` whose text is one line for the user: what is taken, by which process when
that can be found out (the lock file, or on Linux the owner of the listening socket in /proc), and the
option to use instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LOCK_FILE = "sandbox.lock"
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


class Unavailable(Exception):
    """A port or the data directory is not free; `str()` is the line to show."""


@dataclass
class Claim:
    data_dir: Path
    host: str
    lock: IO[str]
    smtp: socket.socket | None
    aws: socket.socket | None
    smtp_port: int
    aws_port: int
    released: bool = field(default=False)
    web: socket.socket | None = None  # the web view's listening socket, until the view takes it
    web_port: int | None = None
    download: socket.socket | None = None  # the download links' port, until their server binds it
    download_port: int = 0

    def aws_fd(self) -> int:
        """The listening AWS socket, for a server that serves on it (it duplicates the descriptor)."""
        if self.aws is None:
            raise RuntimeError("the AWS port is no longer held")
        return self.aws.fileno()

    def hand_over_smtp(self) -> int:
        """Close the SMTP socket so the SMTP server can bind its port at once; returns the port."""
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None
        return self.smtp_port

    def hand_over_download(self) -> int:
        """Close the download port's socket so the download server can bind it; returns the port."""
        if self.download is not None:
            self.download.close()
            self.download = None
        return self.download_port

    def hand_over_web(self) -> socket.socket:
        """The web view's listening socket; from now on the view closes it."""
        if self.web is None:
            raise RuntimeError("no web port is held")
        sock, self.web = self.web, None
        return sock

    def release(self) -> None:
        """Close the sockets and give up the lock; safe to call more than once."""
        if self.released:
            return
        self.released = True
        for held in (self.smtp, self.aws, self.web, self.download):
            if held is not None:
                held.close()
        self.smtp = self.aws = self.web = self.download = None
        with contextlib.suppress(OSError):
            self.lock.truncate(0)  # nobody holds it any more: the next start has no one to name
        self.lock.close()  # closing the only descriptor drops the flock


def claim(
    data_dir: Path,
    host: str,
    smtp_port: int,
    aws_port: int,
    web_port: int | None = None,
    download_port: int | None = None,
) -> Claim:
    """The directory, then each port (`0`: a free one; `web_port` None: no web view, `download_port`
    None: none claimed). Raises `Unavailable`; on failure nothing is kept."""
    ports = {
        "--smtp-port": smtp_port,
        "--aws-port": aws_port,
        "--web-port": web_port or 0,
        "--download-port": download_port or 0,
    }
    for i, (first, port) in enumerate(ports.items()):
        for second, other in list(ports.items())[i + 1 :]:
            if port and port == other:
                raise Unavailable(
                    f"{first} and {second} are both {port}; give one another port, or 0 for a free one"
                )
    lock = lock_directory(data_dir)
    held: list[socket.socket] = []
    try:
        smtp = listen(host, smtp_port, "--smtp-port")
        held.append(smtp)
        aws = listen(host, aws_port, "--aws-port")
        held.append(aws)
        web = None if web_port is None else listen(host, web_port, "--web-port")
        if web is not None:
            held.append(web)
        download = None if download_port is None else listen(host, download_port, "--download-port")
        if download is not None:
            held.append(download)
    except BaseException:
        for sock in held:
            sock.close()
        lock.close()
        raise
    taken = Claim(data_dir, host, lock, smtp, aws, _port_of(smtp), _port_of(aws))
    holder = {"pid": os.getpid(), "host": host, "smtp_port": taken.smtp_port, "aws_port": taken.aws_port}
    if web is not None:
        taken.web, taken.web_port = web, _port_of(web)
        holder["web_port"] = taken.web_port
    if download is not None:
        taken.download, taken.download_port = download, _port_of(download)
        holder["download_port"] = taken.download_port
    lock.write(json.dumps(holder) + "\n")
    lock.flush()
    return taken


def lock_directory(data_dir: Path) -> IO[str]:
    """The open lock file, exclusively locked; `Unavailable` if another process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # "a+" creates the file without truncating it: the holder's details stay readable until we have
    # the lock ourselves.
    lock = (data_dir / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = _describe_holder(lock.read())
        lock.close()
        raise Unavailable(
            f"data directory {data_dir} is in use by another sandbox{holder}; give this one its own"
            " with --data-dir DIR, or stop the other one"
        ) from None
    except BaseException:
        lock.close()
        raise
    lock.seek(0)
    lock.truncate(0)
    return lock


def listen(host: str, port: int, option: str) -> socket.socket:
    """A listening socket on host:port (like moto's and aiosmtpd's: SO_REUSEADDR, so a port a stopped
    sandbox left in TIME_WAIT is free, while one another program listens on is not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as werkzeug picks it for moto
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError as e:
        sock.close()
        raise unavailable_port(host, port, option, e) from None
    return sock


def unavailable_port(host: str, port: int, option: str, error: OSError) -> Unavailable:
    """The line for a port that could not be had (also when a server fails to bind it later)."""
    instead = f"choose another with {option} PORT, or {option} 0 for a free one"
    if error.errno == errno.EADDRINUSE:
        pid = listening_process(port)
        by = f"process {pid}{_command_of(pid)}" if pid is not None else "another program"
        return Unavailable(f"port {port} on {host} ({option}) is in use by {by}; {instead}")
    return Unavailable(f"cannot listen on {host}:{port} ({option}): {error.strerror or error}; {instead}")


def listening_process(port: int) -> int | None:
    """The PID of a process listening on the TCP port, when /proc shows it (Linux, a process we may
    inspect); None otherwise."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text("ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()  # sl local_address rem_address st ... uid timeout inode
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    if not sockets:
        return None
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            for fd in (process / "fd").iterdir():
                if os.readlink(fd) in sockets:
                    return int(process.name)
        except OSError:  # gone, or not ours to inspect
            continue
    return None


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        pid, host = int(holder["pid"]), str(holder["host"])
        ports = f"SMTP {host}:{int(holder['smtp_port'])}, AWS {host}:{int(holder['aws_port'])}"
    except (ValueError, KeyError, TypeError):
        return ""  # still starting (the lock is taken before the file is written), or not ours
    return f" (process {pid}, {ports})"


def _command_of(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    words = [
        os.path.basename(argv[0].decode(errors="replace")),
        *(a.decode(errors="replace") for a in argv[1:]),
    ]
    command = " ".join(words)
    return f" ({command[:77]}...)" if len(command) > 80 else f" ({command})"


def _port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
