"""Where ML Metadata lives: one `--metadata URL` parser, one ConnectionConfig builder.

    sqlite:///output/metadata.db             a SQLite file (relative path; `sqlite:////abs`)
    output/metadata.db                       the same, as a plain path
    postgresql://user[:password]@host[:port]/dbname[?sslmode=require&passfile=PATH]

SQLite is the default (`<output-dir>/metadata.db`): embedded, one person.
PostgreSQL is a store a team shares (ML Metadata 1.16's
`ConnectionConfig.postgresql`). Its password comes from the URL, else
`PGPASSWORD`, else a passfile (`?passfile=`, `PGPASSFILE` or `~/.pgpass`, read
by libpq); it is never printed or logged: every message shows `redacted()`.

The schema is created in one explicit step (`open_store(..., create=True)`,
`python -m reporting.metadata init-store`): ML Metadata creates its tables
on first connect, and two clients that meet an empty database at once both
try to (one fails with a duplicate key or "MLMDEnv table exists but no
schema_version", kubeflow/metadata#228). So every other connection to
PostgreSQL first opens it in a read-only session (libpq's `PGOPTIONS`,
`default_transaction_read_only`): an uninitialised store is then an error
that says to run init-store, never a schema created behind the user's back.
Runs connect with ML Metadata's `retry_options`, so a transaction aborted by
a concurrent writer is retried.
"""

import contextlib
import dataclasses
import os
import random
import re
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TypeVar

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from contract import tfx_internals

T = TypeVar("T")

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DEFAULT_PORT = 5432
ABORTED_RETRIES = 5
"""ML Metadata's retries of a transaction aborted by a concurrent writer."""
INIT_COMMAND = "python -m reporting.metadata init-store --metadata URL"
_INIT_RACE = re.compile(
    r"duplicate key value|already exists|MLMDEnv|schema_version|subset of tables|"
    r"concurrent connection"
)
"""What ML Metadata says when another client is creating the same schema (or database)."""
INIT_ATTEMPTS = 10
_WRITE_RACE = re.compile(
    r"transaction is aborted|duplicate key value|already exists|could not serialize|"
    r"deadlock detected"
)
"""What PostgreSQL says when two clients register the same type or context at once."""
OWNER_PROPERTY = "output_dir"
"""The custom property of a pipeline's context in a shared store: the output
directory (`HOST:PATH`) whose runs it holds."""
_NEWER = re.compile(r"database version (\d+) is greater than library version (\d+)")


class StoreError(RuntimeError):
    """The store cannot be used; the message says what and how to fix it (no password)."""


@dataclasses.dataclass(frozen=True)
class StoreURL:
    """A parsed `--metadata` value."""

    scheme: str
    path: str | None = None
    """SQLite: the file."""
    host: str | None = None
    port: int = DEFAULT_PORT
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    dbname: str | None = None
    passfile: str | None = None
    sslmode: str | None = None

    def redacted(self) -> str:
        """The URL as it may be shown: never the password."""
        if self.scheme == SQLITE:
            return f"sqlite:///{self.path}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def __str__(self) -> str:
        return self.redacted()


_FORMS = (
    "expected sqlite:///PATH (or a plain file path) or "
    "postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
)


def parse(url: str) -> StoreURL:
    """Parses a `--metadata` value.

    Raises:
      StoreError: not one of the forms, or a PostgreSQL URL without user,
        host or database (the message gives the forms).
    """
    if "://" not in url:
        if not url:
            raise StoreError(f"empty --metadata: {_FORMS}")
        return StoreURL(SQLITE, path=url)
    scheme, _, rest = url.partition("://")
    if scheme == SQLITE:
        if not rest.startswith("/") or len(rest) < 2:
            raise StoreError(f"--metadata {url}: {_FORMS}")
        return StoreURL(SQLITE, path=rest[1:])
    if scheme not in (POSTGRESQL, "postgres"):
        raise StoreError(f"--metadata: unknown scheme {scheme!r}; {_FORMS}")
    parts = urllib.parse.urlsplit(url)
    shown = f"postgresql://{parts.username or ''}@{parts.hostname or ''}{parts.path}"
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise StoreError(f"--metadata {shown}: the port is not a number; {_FORMS}") from None
    dbname = urllib.parse.unquote(parts.path.lstrip("/"))
    missing = [
        name
        for name, value in (("user", parts.username), ("host", parts.hostname), ("dbname", dbname))
        if not value
    ]
    if missing:
        raise StoreError(f"--metadata {shown}: no {', '.join(missing)}; {_FORMS}")
    query = urllib.parse.parse_qs(parts.query)
    unknown = sorted(set(query) - {"sslmode", "passfile"})
    if unknown:
        raise StoreError(
            f"--metadata {shown}: unknown option(s) {unknown}; known: sslmode, passfile"
        )
    password = urllib.parse.unquote(parts.password) if parts.password else None
    passfile = (query.get("passfile") or [None])[0] or os.environ.get("PGPASSFILE")
    if passfile is None and os.path.isfile(os.path.expanduser("~/.pgpass")):
        passfile = os.path.expanduser("~/.pgpass")
    return StoreURL(
        POSTGRESQL,
        host=parts.hostname,
        port=port,
        user=urllib.parse.unquote(parts.username),
        password=password or os.environ.get("PGPASSWORD") or None,
        dbname=dbname,
        passfile=passfile,
        sslmode=(query.get("sslmode") or [None])[0],
    )


def connection_config(
    store: StoreURL, readonly: bool = False, create: bool = False
) -> metadata_store_pb2.ConnectionConfig:
    """The ML Metadata ConnectionConfig for `store` (the one place it is built).

    Args:
      store: Where.
      readonly: SQLite: open the file read-only (readers). PostgreSQL: see `open_store`.
      create: PostgreSQL: create the database if it is missing (init-store only).
    """
    config = metadata_store_pb2.ConnectionConfig()
    if store.scheme == SQLITE:
        config.sqlite.filename_uri = store.path
        config.sqlite.connection_mode = (
            metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
            if readonly
            else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        )
        return config
    postgresql = config.postgresql
    postgresql.host = store.host
    postgresql.port = str(store.port)
    postgresql.user = store.user
    postgresql.dbname = store.dbname
    postgresql.skip_db_creation = not create
    if store.password:
        postgresql.password = store.password
    if store.passfile:
        postgresql.passfile = store.passfile
    if store.sslmode:
        postgresql.ssloption.sslmode = store.sslmode
    config.retry_options.max_num_retries = ABORTED_RETRIES
    return config


@contextlib.contextmanager
def _read_only_sessions() -> Iterator[None]:
    """libpq sessions opened in the block refuse writes (so no schema is created)."""
    before = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"{before or ''} -c default_transaction_read_only=on".strip()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = before


@contextlib.contextmanager
def _native_stderr(lines: list[str]) -> Iterator[None]:
    """Collects what native code writes to fd 2 in the block (libpq's reasons, via glog)."""
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines.extend(captured.read().decode(errors="replace").splitlines())


def _server_reason(lines: list[str]) -> str:
    """PostgreSQL's own words from the native log, e.g. 'password authentication failed'."""
    for line in lines:
        _, found, reason = line.partition("PostgreSQL error:")
        if found and reason.strip():
            return re.sub(r"^\s*(FATAL|ERROR):\s*", "", reason).strip()
    return ""


def _reachable(store: StoreURL) -> str | None:
    """None if a TCP connection to the server opens, else why not."""
    try:
        with socket.create_connection((store.host, store.port), timeout=5):
            return None
    except OSError as error:
        return error.strerror or str(error)


def _explain(store: StoreURL, error: Exception, native: list[str]) -> StoreError:
    text = str(error)
    reason = _server_reason(native)
    where = store.redacted()
    newer = _NEWER.search(text)
    if newer:
        return StoreError(
            f"{where} was created by a newer ML Metadata (schema version {newer.group(1)}; "
            f"this one reads version {newer.group(2)}): upgrade ml-metadata in "
            "requirements/requirements.lock, or use another store"
        )
    if store.scheme == SQLITE:
        return StoreError(f"cannot open ML Metadata at {store.path}: {text.strip()}")
    if "read-only transaction" in text:
        return StoreError(
            f"{where} holds no ML Metadata schema yet: create it once with `{INIT_COMMAND}` "
            "(runs never create it: two meeting an empty database would both try)"
        )
    unreachable = _reachable(store)
    if unreachable:
        return StoreError(
            f"cannot reach PostgreSQL at {store.host}:{store.port} ({unreachable}): start the "
            "server, or fix host and port in --metadata"
        )
    if "does not exist" in reason and "database" in reason:
        return StoreError(
            f"database {store.dbname!r} does not exist on {store.host}:{store.port}: create it "
            f"with `{INIT_COMMAND}`"
        )
    if "authentication" in reason or "password" in reason or "role" in reason:
        return StoreError(
            f"PostgreSQL at {store.host}:{store.port} refused user {store.user!r} ({reason}): "
            "give the right password in the URL, PGPASSWORD or a passfile"
        )
    return StoreError(f"cannot open ML Metadata at {where}: {reason or text.strip()}")


def open_store(
    store: StoreURL | str, readonly: bool = False, create: bool = False
) -> metadata_store.MetadataStore:
    """Opens the store, with an error that says what to do when it cannot.

    Args:
      store: A StoreURL or a `--metadata` value.
      readonly: SQLite: read-only (readers). PostgreSQL: every connection but
        init-store's is first checked in a read-only session, so this only
        matters for SQLite.
      create: Create (or upgrade) the schema, and the PostgreSQL database if
        missing: init-store's one explicit step. Concurrent init-stores are
        safe: the losers of the creation race connect again.

    Raises:
      StoreError: unreachable server, refused login, missing database, no
        schema yet (PostgreSQL without `create`), a newer schema, or a bad URL.
    """
    store = parse(store) if isinstance(store, str) else store
    if store.scheme == SQLITE:
        if readonly and not os.path.isfile(store.path):
            raise StoreError(f"no ML Metadata at {store.path}; run local_runner.py first")
        try:
            return metadata_store.MetadataStore(connection_config(store, readonly=readonly))
        except Exception as error:  # noqa: BLE001 - ML Metadata raises plain errors
            raise _explain(store, error, []) from None
    config = connection_config(store, create=create)
    for attempt in range(INIT_ATTEMPTS):
        native: list[str] = []
        try:
            with _native_stderr(native):
                if create:
                    return metadata_store.MetadataStore(config, enable_upgrade_migration=True)
                with _read_only_sessions():
                    metadata_store.MetadataStore(config)
                return metadata_store.MetadataStore(config)
        except Exception as error:  # noqa: BLE001 - ML Metadata raises plain errors
            if create and _INIT_RACE.search(str(error)) and attempt < INIT_ATTEMPTS - 1:
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.2)  # another is creating it
                continue
            raise _explain(store, error, native) from None
    raise AssertionError("unreachable")


def retrying_races(step: Callable[[], T]) -> T:
    """Runs an idempotent registration `step`, again while it loses a race to another client.

    Two runs registering the same type or context into PostgreSQL at once:
    one gets a duplicate key, or a transaction PostgreSQL has aborted; the
    other's row is then there, and the step finds it the next time.
    """
    for attempt in range(INIT_ATTEMPTS):
        try:
            return step()
        except Exception as error:  # noqa: BLE001 - ML Metadata raises plain errors
            if not _WRITE_RACE.search(str(error)) or attempt == INIT_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1) + random.random() * 0.2)
    raise AssertionError("unreachable")


def claim_pipeline(store: StoreURL | str, pipeline_name: str, owner: str) -> None:
    """Makes `pipeline_name` in a shared store the pipeline of output dir `owner`, or refuses.

    TFX keys its cache on the pipeline's name, not on its root: two output
    directories running one pipeline name into one store would be served
    each other's cached artifacts, files that live in the other directory.
    So in a store that is not an output dir's own, a pipeline name belongs
    to the first output dir that runs it (recorded on the pipeline's context
    when it is created, which is atomic), and another one is refused.

    Raises:
      StoreError: the name belongs to another output dir (the message names
        it and says how to run under another name).
    """
    store = parse(store) if isinstance(store, str) else store
    handle = open_store(store)

    def context() -> metadata_store_pb2.Context:
        found = handle.get_context_by_type_and_name(
            tfx_internals.PIPELINE_CONTEXT_TYPE, pipeline_name
        )
        if found is not None:
            return found
        type_id = handle.put_context_type(
            metadata_store_pb2.ContextType(name=tfx_internals.PIPELINE_CONTEXT_TYPE),
            can_add_fields=True,
            can_omit_fields=True,
        )
        new = metadata_store_pb2.Context(type_id=type_id, name=pipeline_name)
        new.custom_properties[OWNER_PROPERTY].string_value = owner
        handle.put_contexts([new])
        return new

    found = retrying_races(context)
    recorded = found.custom_properties[OWNER_PROPERTY].string_value
    if not recorded:  # created before names were claimed: this output dir takes it
        found.custom_properties[OWNER_PROPERTY].string_value = owner
        handle.put_contexts([found])
    elif recorded != owner:
        raise StoreError(
            f"pipeline {pipeline_name!r} in {store.redacted()} belongs to output dir {recorded} "
            "(its runs, artifacts and cache are there): run this output dir under its own "
            "name, e.g. --pipeline-name "
            f"{pipeline_name}-{os.path.basename(owner.rstrip('/')) or 'mine'}"
        )
