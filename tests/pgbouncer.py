"""A private PgBouncer (Debian's `pgbouncer`) in transaction pooling mode in front of the test
database: the pooler most managed PostgreSQL offerings put in front (docs/operations/pgbouncer.md).

Each instance has its own ini in a directory of its own, listens on a free port of 127.0.0.1, and
lets the test database's user in without a password (auth_type=trust) to log in to PostgreSQL
with the test URL's own credentials."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.requirements import need
from tests.workers import wait_for

PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")  # Debian puts it in sbin


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in PGBOUNCER_PATHS if Path(p).exists()), None)


def need_pgbouncer(database_url: str) -> str:
    """The pgbouncer binary; skip (or fail, where FOLLOWUP_TEST_REQUIRE names pgbouncer) without it
    or without a PostgreSQL behind it."""
    need(
        "pgbouncer", database_url.startswith("postgresql"), "needs PostgreSQL behind PgBouncer (DATABASE_URL)"
    )
    binary = pgbouncer_binary()
    need("pgbouncer", binary is not None, "needs PgBouncer (Debian package `pgbouncer`)")
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as() -> list[str]:
    """PgBouncer refuses to run as root: as root, it is told to switch to PostgreSQL's own user
    (having read its ini and auth file first), or to nobody."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    return []


class PgBouncer:
    """`pgbouncer` in pool_mode=transaction with `pool_size` server sessions for the whole test
    database: fewer sessions than clients, so clients take turns on the same ones (as in
    production, where a pooler is there for exactly that)."""

    def __init__(self, binary: str, directory: Path, database_url: str, pool_size: int = 2):
        self.binary, self.directory, self.pool_size = binary, directory, pool_size
        self.target = make_url(database_url)
        self.port = _free_port()

    @property
    def url(self) -> str:
        """The test database's URL through the pooler (what DATABASE_URL is behind one)."""
        return self.target.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def __enter__(self) -> PgBouncer:
        target = self.target
        user = target.username or "postgres"
        (self.directory / "users.txt").write_text(f'"{user}" "{target.password or ""}"\n')
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"{target.database} = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        self.log = open(self.directory / "pgbouncer.log", "ab")
        self.process = subprocess.Popen(
            [self.binary, *_run_as(), str(ini)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._listening, timeout=20, interval=0.05)
        return self

    def _listening(self) -> bool:
        assert self.process.poll() is None, (self.directory / "pgbouncer.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # immediate shutdown
            self.process.wait(timeout=20)
        self.log.close()
