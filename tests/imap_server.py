"""A real IMAP server (Dovecot from Debian's packages) on loopback for the bounce tests
and benchmark.

Each instance runs from a private configuration under its own directory: its own
base_dir, state, log and Maildir, one passwd-file user with a plain password, no TLS,
listening on 127.0.0.1 at a free port. Messages are put in with IMAP APPEND, as a mail
server's delivery would leave them; a benchmark may write Maildir files directly.

    with ImapServer() as server:
        server.append(b"From: ...", folder="INBOX")
        ... read 127.0.0.1:server.port as server.user / server.password ...
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DOVECOT = "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_dovecot() -> None:
    """Skip (with the reason) where Dovecot is not installed; .ci/run installs it."""
    if not Path(DOVECOT).exists():
        pytest.skip(f"{DOVECOT} is missing: install Debian's dovecot-imapd (.ci/run does)")


def _config(root: Path, port: int, uid: int, gid: int, tls_port: int = 0) -> str:
    # Running as root (CI) needs the internal/login users named and the chroots off; as
    # any other user Dovecot runs everything as that user.
    as_root = os.geteuid() == 0
    users = ("default_login_user = dovenull\ndefault_internal_user = dovecot\n"
             "default_internal_group = dovecot\n") if as_root else (
        f"default_login_user = {pwd.getpwuid(os.geteuid()).pw_name}\n"
        f"default_internal_user = {pwd.getpwuid(os.geteuid()).pw_name}\n")
    ssl = (f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem" if tls_port
           else "ssl = no")
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
{users}first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_privileged_group =
mail_max_userip_connections = 100
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


class ImapServer:
    """A private Dovecot; `start()` waits until it answers, `stop()` kills it."""

    def __init__(self, root: Path | None = None, user: str = "bounces",
                 password: str = "s3cret-pass", *, tls: bool = False) -> None:
        """`tls`: also IMAPS on `tls_port` and STARTTLS on `port`, with a self-signed
        certificate for "localhost" (made with the openssl command)."""
        # Dovecot's own users (as root) must reach every directory up to the passwd file
        # and the Maildir; pytest's tmp_path sits under 0700 directories, so the server
        # gets a directory of its own in the system's temporary directory by default.
        self.own_root = root is None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="infranet-imap-"))
            root.chmod(0o711)
        self.root = root
        self.user = user
        self.password = password
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.home = root / "home"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ImapServer:
        require_dovecot()
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        (self.home / "Maildir").mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("dovecot")
            uid, gid = owner.pw_uid, owner.pw_gid
            for path in (self.home, *self.home.rglob("*")):
                os.chown(path, uid, gid)
        else:
            uid, gid = os.geteuid(), os.getegid()
        (self.root / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{self.home}\n", encoding="utf-8")
        if self.tls_port:
            self._certificate()
        (self.root / "dovecot.conf").write_text(
            _config(self.root, self.port, uid, gid, self.tls_port))
        # In the foreground (-F), as a child of this process: it is reaped when stopped.
        self.log_file = (self.root / "start.log").open("wb")
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                        stdin=subprocess.DEVNULL, stdout=self.log_file,
                                        stderr=self.log_file)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    start_log = (self.root / "start.log").read_text(errors="replace")
                    raise RuntimeError(f"dovecot did not start: {start_log}{self.log()}") from None
                time.sleep(0.05)
        return self

    def _certificate(self) -> None:
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is missing (Debian package openssl)")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", str(self.root / "key.pem"), "-out", str(self.root / "cert.pem")],
                       check=True, capture_output=True, timeout=60)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Kill the helper processes, then the master (a clean SIGTERM shutdown waits about
        three seconds for them; the tests need nothing written at exit)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for child in _children(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        time.sleep(0.05)  # the master reaps them
        process.kill()
        process.wait(timeout=10)
        self.log_file.close()

    def cleanup(self) -> None:
        """Stop, and remove the directory when it is the server's own."""
        self.stop()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A `[bounces]` section reading this server's INBOX."""
        return {"host": "127.0.0.1", "port": self.port, "tls": "none", "user": self.user,
                "password": self.password, **extra}

    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Put messages in a folder (created when missing) by IMAP APPEND."""
        conn = self.connect()
        try:
            conn.create(_quote(folder))
            for data in messages:
                typ, answer = conn.append(_quote(folder), None, None, data)
                assert typ == "OK", answer
        finally:
            conn.logout()

    def folder(self, name: str) -> list[bytes]:
        """The messages in a folder, oldest first ([] when the folder does not exist)."""
        conn = self.connect()
        try:
            typ, _ = conn.select(_quote(name), readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("SEARCH", "ALL")
            uids = data[0].split()
            found = []
            for uid in uids:
                typ, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
                found.append(next(p[1] for p in parts if isinstance(p, tuple)))
            return found
        finally:
            conn.logout()

    def count(self, name: str) -> int:
        conn = self.connect()
        try:
            typ, data = conn.status(_quote(name), "(MESSAGES)")
            if typ != "OK":
                return 0
            return int(data[0].split(b"MESSAGES ")[1].rstrip(b")"))
        finally:
            conn.logout()

    def maildir(self, folder: str = "INBOX") -> Path:
        """The Maildir directory of a folder (for writing many files quickly)."""
        base = self.home / "Maildir"
        return base if folder == "INBOX" else base / ("." + folder.replace("/", "."))

    def chown_home(self) -> None:
        """Give files written directly (a benchmark's Maildir) to the mail user."""
        if os.geteuid() == 0:
            owner = pwd.getpwnam("dovecot")
            for path in (self.home, *self.home.rglob("*")):
                os.chown(path, owner.pw_uid, owner.pw_gid)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(name="imap")
def imap_fixture() -> Iterator[ImapServer]:
    """Import `imap_fixture` into a test module and ask for `imap`."""
    require_dovecot()
    server = ImapServer()
    try:
        yield server.start()
    finally:
        server.cleanup()
