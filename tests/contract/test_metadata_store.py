"""The --metadata URL, the ConnectionConfig built from it, and a real PostgreSQL server.

Without a server: the URL forms, the password never shown, the config fields.
With one (the `postgres` fixture: .ci/run's server, else one started here):
init-store creates the database and schema once, also when four run at the
same moment (ML Metadata's own creation race fails three of four clients on
an empty database); a run's connection never creates a schema; and each
failure (server down, wrong password, missing database, uninitialised, a
newer schema) is one line that says what to do and never holds the password.
Then what two runs meeting in one store need: every type and context a run
registers, registered by several runs at the same moment into a fresh store
(the real pipeline's IR), all succeed; and a pipeline name belongs to one
output dir (TFX's cache is keyed on the name): another is refused, in one line.
"""

import multiprocessing
import os
import socket
import uuid

import pytest
from ml_metadata.proto import metadata_store_pb2

from contract import metadata_store as stores
from reporting import metadata as metadata_command
from tests.conftest import SMALL_RUN_FLAGS


def test_sqlite_urls_and_plain_paths_name_a_file():
    assert stores.parse("sqlite:///output/metadata.db").path == "output/metadata.db"
    assert stores.parse("sqlite:////srv/mlmd/metadata.db").path == "/srv/mlmd/metadata.db"
    assert stores.parse("output/metadata.db") == stores.StoreURL(
        "sqlite", path="output/metadata.db"
    )


def test_a_postgresql_url_gives_every_field_and_never_shows_its_password(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    store = stores.parse("postgresql://team:s%40cret@db.example:6543/mlmd?sslmode=require")
    assert (store.host, store.port, store.user, store.password, store.dbname, store.sslmode) == (
        "db.example",
        6543,
        "team",
        "s@cret",
        "mlmd",
        "require",
    )
    assert store.redacted() == str(store) == "postgresql://team@db.example:6543/mlmd"
    assert "s@cret" not in repr(store)
    assert stores.parse("postgres://team@db/mlmd").port == stores.DEFAULT_PORT


def test_the_password_may_come_from_pgpassword_or_a_passfile(monkeypatch, tmp_path):
    monkeypatch.setenv("PGPASSWORD", "from-env")
    assert stores.parse("postgresql://team@db/mlmd").password == "from-env"
    assert stores.parse("postgresql://team:given@db/mlmd").password == "given"
    monkeypatch.delenv("PGPASSWORD")
    passfile = tmp_path / "pgpass"
    store = stores.parse(f"postgresql://team@db/mlmd?passfile={passfile}")
    assert store.password is None and store.passfile == str(passfile)
    assert stores.connection_config(store).postgresql.passfile == str(passfile)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://team@db/mlmd", "unknown scheme 'mysql'"),
        ("postgresql://db.example/mlmd", "no user"),
        ("postgresql://team@db.example", "no dbname"),
        ("postgresql://team:pw@db.example:port/mlmd", "the port is not a number"),
        ("postgresql://team@db/mlmd?colour=blue", "unknown option(s) ['colour']"),
        ("sqlite://", "expected sqlite:///PATH"),
        ("", "empty --metadata"),
    ],
)
def test_a_bad_url_is_an_error_that_gives_the_forms_and_not_the_password(url, says):
    with pytest.raises(stores.StoreError) as raised:
        stores.parse(url)
    assert says in str(raised.value)
    assert ":pw@" not in str(raised.value)


def test_the_runner_refuses_a_bad_url_before_running(tmp_path, capsys):
    import local_runner

    with pytest.raises(SystemExit) as exited:
        local_runner.parse_args([f"--output-dir={tmp_path}", "--metadata=mysql://x/y"])
    assert exited.value.code == 2 and "unknown scheme 'mysql'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing written"


@pytest.mark.parametrize("name", ["mnist.v2", "Mnist", "-mnist", "", "m" * 64])
def test_a_pipeline_name_the_store_cannot_tell_from_its_nodes_is_refused(name, tmp_path, capsys):
    import local_runner

    with pytest.raises(SystemExit) as exited:
        local_runner.parse_args([f"--output-dir={tmp_path}", f"--pipeline-name={name}"])
    assert exited.value.code == 2
    assert f"--pipeline-name {name!r}: use 1 to 63 lower-case letters" in capsys.readouterr().err


def test_the_pipeline_name_flag_names_the_run_in_ml_metadata(tmp_path):
    import local_runner

    args = local_runner.parse_args([f"--output-dir={tmp_path}", "--pipeline-name=mnist-bob_2"])
    assert local_runner.run_config(args).pipeline_name == "mnist-bob_2"
    default = local_runner.parse_args([f"--output-dir={tmp_path}"])
    assert local_runner.run_config(default).pipeline_name == "mnist"


def test_the_connection_config_is_built_in_one_place():
    store = stores.parse("postgresql://team:pw@db:6543/mlmd")
    config = stores.connection_config(store)
    assert config.postgresql.host == "db" and config.postgresql.port == "6543"
    assert config.postgresql.skip_db_creation, "runs never create a database"
    assert config.retry_options.max_num_retries == stores.ABORTED_RETRIES
    assert not stores.connection_config(store, create=True).postgresql.skip_db_creation
    sqlite = stores.connection_config(stores.parse("out/metadata.db"), readonly=True)
    assert sqlite.sqlite.connection_mode == metadata_store_pb2.SqliteMetadataSourceConfig.READONLY


# --- with a real server ---


def _fresh(postgres) -> str:
    return postgres.database(f"mlmd_{uuid.uuid4().hex[:10]}")


def _init(url: str, results) -> None:
    try:
        stores.open_store(url, create=True)
        results.put("ok")
    except stores.StoreError as error:
        results.put(str(error))


def test_init_store_creates_the_database_and_schema_once_even_four_at_a_time(postgres, capsys):
    url = _fresh(postgres)
    results = multiprocessing.get_context("spawn").Queue()
    clients = [
        multiprocessing.get_context("spawn").Process(target=_init, args=(url, results))
        for _ in range(4)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=120)
    assert sorted(results.get(timeout=5) for _ in clients) == ["ok"] * 4
    dbname = url.rsplit("/", 1)[1]
    assert postgres.sql(dbname, "select count(*) from mlmdenv") == "1"
    store = stores.open_store(url)  # a run's connection: the schema is there
    assert store.get_artifact_types() == []
    assert metadata_command.main(["init-store", "--metadata", url]) == 0, "again: a no-op"
    out = capsys.readouterr().out
    assert out.strip() == f"ML Metadata store ready: {stores.parse(url).redacted()}"
    assert "mlmd-test" not in out


def test_a_run_never_creates_the_schema_of_an_empty_database(postgres):
    url = _fresh(postgres)
    dbname = url.rsplit("/", 1)[1]
    postgres.sql("postgres", f"create database {dbname}")
    with pytest.raises(stores.StoreError) as raised:
        stores.open_store(url)
    assert str(raised.value) == (
        f"{stores.parse(url).redacted()} holds no ML Metadata schema yet: create it once with "
        f"`{stores.INIT_COMMAND}` (runs never create it: two meeting an empty database would "
        "both try)"
    )
    tables = "select count(*) from information_schema.tables where table_schema = 'public'"
    assert postgres.sql(dbname, tables) == "0"


def test_each_failure_is_one_line_that_says_what_to_do(postgres, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    good = _fresh(postgres)
    stores.open_store(good, create=True)
    base = good.rsplit("/", 1)[0]
    wrong_password = base.replace(":mlmd-test@", ":not-this-one@") + "/postgres"
    free = _unused_port()
    down = f"postgresql://mlmd:mlmd-test@127.0.0.1:{free}/postgres"
    cases = {
        down: f"cannot reach PostgreSQL at 127.0.0.1:{free} (Connection refused): start the "
        "server, or fix host and port in --metadata",
        wrong_password: f"PostgreSQL at 127.0.0.1:{postgres.port} refused user 'mlmd' "
        '(password authentication failed for user "mlmd"): give the right password in the URL, '
        "PGPASSWORD or a passfile",
        f"{base}/no_such_db": f"database 'no_such_db' does not exist on 127.0.0.1:{postgres.port}: "
        f"create it with `{stores.INIT_COMMAND}`",
    }
    for url, message in cases.items():
        with pytest.raises(stores.StoreError) as raised:
            stores.open_store(url)
        assert str(raised.value) == message
        assert "\n" not in str(raised.value) and "not-this-one" not in str(raised.value)
    dbname = good.rsplit("/", 1)[1]
    postgres.sql(dbname, "update mlmdenv set schema_version = 99")
    with pytest.raises(
        stores.StoreError, match=r"created by a newer ML Metadata \(schema version 99"
    ):
        stores.open_store(good)


def test_the_runner_with_an_unusable_store_stops_before_any_work(
    postgres, tmp_path, mnist_dir, capsys
):
    import local_runner

    url = _fresh(postgres)  # never initialised: no database yet
    flags = [f"--output-dir={tmp_path / 'out'}", f"--mnist-dir={mnist_dir}", f"--metadata={url}"]
    assert local_runner.main([*flags, *SMALL_RUN_FLAGS]) == 1
    captured = capsys.readouterr()
    (line,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert "does not exist" in line and stores.INIT_COMMAND in line
    assert "mlmd-test" not in captured.err + captured.out
    assert not (tmp_path / "out" / "serving").exists(), "nothing released"
    assert not (tmp_path / "out" / "pipeline").exists(), "no pipeline work started"


def _unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _register(url: str, serialized_ir: bytes, start, results) -> None:
    """A run's first step in its own process: register its types and contexts, at `start`."""
    from tfx.proto.orchestration import pipeline_pb2

    from contract import tfx_internals

    pipeline_ir = pipeline_pb2.Pipeline.FromString(serialized_ir)
    config = stores.connection_config(stores.parse(url))
    stores.open_store(url)
    start.wait(timeout=120)
    try:
        stores.retrying_races(lambda: tfx_internals.register_run_in_metadata(pipeline_ir, config))
        results.put("ok")
    except Exception as error:  # noqa: BLE001 - the test reports it
        results.put(f"{type(error).__name__}: {error}")


def _pipeline_ir(tmp_path, run_id: str):
    from contract import tfx_internals
    from tests.pipeline.test_pipeline import _pipeline as default_pipeline

    return tfx_internals.compile_with_run_id(default_pipeline(tmp_path), run_id)


def test_runs_registering_their_types_and_contexts_at_one_moment_all_succeed(postgres, tmp_path):
    url = _fresh(postgres)
    stores.open_store(url, create=True)
    # Forked: the children start with TFX already imported (they only use ML
    # Metadata, no TensorFlow), so they meet at the barrier within a second.
    fork = multiprocessing.get_context("fork")
    irs = [_pipeline_ir(tmp_path, f"run-{n}").SerializeToString() for n in range(3)]
    start, results = fork.Barrier(len(irs)), fork.Queue()
    clients = [fork.Process(target=_register, args=(url, ir, start, results)) for ir in irs]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=180)
    assert sorted(results.get(timeout=5) for _ in clients) == ["ok"] * len(irs)
    store = stores.open_store(url)
    (pipeline,) = store.get_contexts_by_type("pipeline")
    runs = store.get_children_contexts_by_context(pipeline.id)
    assert sorted(run.name for run in runs) == [f"run-{n}" for n in range(3)]
    nodes = [node.pipeline_node.node_info.id for node in _pipeline_ir(tmp_path, "x").nodes]
    assert sorted(c.name for c in store.get_contexts_by_type("node")) == sorted(
        f"mnist.{node}" for node in nodes
    )


def test_a_pipeline_name_in_a_shared_store_belongs_to_one_output_dir(postgres):
    url = _fresh(postgres)
    stores.open_store(url, create=True)
    stores.claim_pipeline(url, "mnist", "host-a:/work/alice/output")
    stores.claim_pipeline(url, "mnist", "host-a:/work/alice/output")  # its own: again fine
    stores.claim_pipeline(url, "mnist-bob", "host-b:/home/bob/output")
    with pytest.raises(stores.StoreError) as raised:
        stores.claim_pipeline(url, "mnist", "host-b:/home/bob/output")
    assert str(raised.value) == (
        f"pipeline 'mnist' in {stores.parse(url).redacted()} belongs to output dir "
        "host-a:/work/alice/output (its runs, artifacts and cache are there): run this output "
        "dir under its own name, e.g. --pipeline-name mnist-output"
    )
    store = stores.open_store(url)
    owners = {
        context.name: context.custom_properties[stores.OWNER_PROPERTY].string_value
        for context in store.get_contexts_by_type("pipeline")
    }
    assert owners == {"mnist": "host-a:/work/alice/output", "mnist-bob": "host-b:/home/bob/output"}
    # A pipeline context from before names were claimed (no owner): the first claim takes it.
    (old,) = [c for c in store.get_contexts_by_type("pipeline") if c.name == "mnist-bob"]
    del old.custom_properties[stores.OWNER_PROPERTY]
    store.put_contexts([old])
    stores.claim_pipeline(url, "mnist-bob", "host-c:/srv/output")
    with pytest.raises(stores.StoreError, match="belongs to output dir host-c:/srv/output"):
        stores.claim_pipeline(url, "mnist-bob", "host-b:/home/bob/output")


def test_the_runner_refuses_another_output_dirs_pipeline_name_before_any_work(
    postgres, tmp_path, mnist_dir, capsys
):
    import local_runner

    url = _fresh(postgres)
    stores.open_store(url, create=True)
    stores.claim_pipeline(url, "mnist", "elsewhere:/team/output")
    out = tmp_path / "out"
    flags = [f"--output-dir={out}", f"--mnist-dir={mnist_dir}", f"--metadata={url}"]
    assert local_runner.main([*flags, *SMALL_RUN_FLAGS]) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert "pipeline 'mnist'" in line and "belongs to output dir elsewhere:/team/output" in line
    assert "--pipeline-name mnist-out" in line
    assert not (out / "pipeline").exists() and not (out / "serving").exists()
    assert local_runner.shared_store(local_runner.parse_args([*flags]))
    own = local_runner.parse_args(
        [f"--output-dir={out}", f"--metadata={os.path.join(out, 'metadata.db')}"]
    )
    assert not local_runner.shared_store(own), "the output dir's own metadata.db claims nothing"
