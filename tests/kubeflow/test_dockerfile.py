"""kubeflow/Dockerfile cannot be built here (no Docker engine): check what it relies on.

The image must hold what `make setup` installs: the same lock, installed with the
same pip flags, on the same Python. Both files are parsed, so a change to either
one alone fails here.
"""

import pathlib
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (PROJECT_ROOT / "kubeflow" / "Dockerfile").read_text()
MAKEFILE = (PROJECT_ROOT / "Makefile").read_text()


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (match[1].upper(), match[2].strip())
        for match in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, flags=re.MULTILINE)
    ]


def _dockerfile_commands() -> list[list[str]]:
    """Every shell command of every RUN, split at `&&`, as argument lists."""
    commands = []
    for instruction, arguments in _dockerfile_instructions():
        if instruction == "RUN":
            commands += [shlex.split(part) for part in arguments.split("&&")]
    return commands


def _make_variables() -> dict[str, str]:
    """Simple `NAME := value` / `NAME ?= value` / `NAME = value` assignments."""
    return {
        match[1]: match[2].strip()
        for match in re.finditer(
            r"^(?:export\s+)?([A-Z_]+)\s*[:?]?=\s*(.*)$", MAKEFILE, flags=re.MULTILINE
        )
    }


def _expand(text: str, variables: dict[str, str]) -> str:
    while (expanded := re.sub(r"\$\((\w+)\)", lambda m: variables[m[1]], text)) != text:
        text = expanded
    return text


def _makefile_setup_commands() -> list[list[str]]:
    """The `$(STAMP):` recipe (what `make setup` runs), variables expanded."""
    variables = _make_variables()
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", MAKEFILE, flags=re.MULTILINE)
    assert recipe, "the Makefile has a $(STAMP) recipe"
    return [shlex.split(_expand(line.strip(), variables)) for line in recipe[1].splitlines()]


def _pip_command(commands: list[list[str]], verb: str, marker: str) -> tuple[int, list[str]]:
    """(position, arguments after `pip VERB`) of the one pip command containing marker."""
    found = [
        (index, command[command.index("pip") + 2 :])
        for index, command in enumerate(commands)
        if "pip" in command
        and command[command.index("pip") + 1 : command.index("pip") + 2] == [verb]
        and marker in command
    ]
    assert len(found) == 1, (verb, marker, commands)
    return found[0]


def test_the_lock_is_installed_with_the_makefiles_pip_flags():
    lock = "requirements/requirements.lock"
    assert (PROJECT_ROOT / lock).is_file()
    _, make_arguments = _pip_command(_makefile_setup_commands(), "install", "-r")
    _, docker_arguments = _pip_command(_dockerfile_commands(), "install", "-r")
    assert make_arguments[-2:] == ["-r", lock]
    assert docker_arguments == make_arguments
    assert {"--no-deps", "--ignore-requires-python"} <= set(docker_arguments)


def test_the_project_is_installed_like_make_setup_then_pip_check():
    make_commands = _makefile_setup_commands()
    docker_commands = _dockerfile_commands()
    make_lock_at, _ = _pip_command(make_commands, "install", "-r")
    make_project_at, make_arguments = _pip_command(make_commands, "install", ".")
    make_check_at, _ = _pip_command(make_commands, "check", "check")
    docker_lock_at, _ = _pip_command(docker_commands, "install", "-r")
    docker_project_at, docker_arguments = _pip_command(docker_commands, "install", ".")
    docker_check_at, _ = _pip_command(docker_commands, "check", "check")
    assert make_lock_at < make_project_at < make_check_at
    assert docker_lock_at < docker_project_at < docker_check_at
    # Editable (-e) suits a checkout, not an image; every other flag is the same.
    assert docker_arguments == [argument for argument in make_arguments if argument != "-e"]
    assert "--no-deps" in docker_arguments


def test_base_is_python_3_11_as_in_the_makefile():
    (base,) = [
        arguments for instruction, arguments in _dockerfile_instructions() if instruction == "FROM"
    ]
    match = re.fullmatch(r"python:(\d+\.\d+)-slim(?:-\w+)?", base)
    assert match, base
    assert f"python{match[1]}" == _make_variables()["PYTHON"] == "python3.11"


def test_the_image_sets_no_keras_environment_of_its_own():
    # The `contract` package sets it wherever the code runs (tests/test_architecture.py).
    env = " ".join(
        arguments for instruction, arguments in _dockerfile_instructions() if instruction == "ENV"
    )
    assert "TF_USE_LEGACY_KERAS" not in env, env
    assert "COPY contract/ contract/" in DOCKERFILE


def _copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context."""
    copies = []
    for instruction, arguments in _dockerfile_instructions():
        if instruction in ("COPY", "ADD"):
            words = shlex.split(arguments)
            if any(word.startswith("--from=") for word in words):
                continue  # from another image (Beam's boot), not the build context
            words = [word for word in words if not word.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


def test_every_copied_path_exists():
    copies = _copies()
    assert copies, "the Dockerfile copies the project"
    for sources, _ in copies:
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), source


def _image_paths(workdir: str) -> dict[str, str]:
    """Path in the image -> build-context source, for each COPY source."""
    paths = {}
    for sources, destination in _copies():
        target = posixpath.join(workdir, destination)  # an absolute destination wins
        for source in sources:
            if destination.endswith("/") and (PROJECT_ROOT / source).is_file():
                path = posixpath.join(target, posixpath.basename(source))
            else:  # a directory's contents, or a file to an explicit name
                path = target
            paths[posixpath.normpath(path)] = source.rstrip("/")
    return paths


def test_the_project_lands_where_the_compiled_pipeline_looks(v2_runner):
    (workdir,) = [
        args for instruction, args in _dockerfile_instructions() if instruction == "WORKDIR"
    ]
    assert workdir == v2_runner.IMAGE_PROJECT_DIR
    in_image = _image_paths(workdir)
    assert in_image[v2_runner.IMAGE_MNIST_DIR] == "data/mnist"
    assert in_image[posixpath.dirname(v2_runner.IMAGE_SCHEMA_FILE)] == "schemas"
    assert (PROJECT_ROOT / "schemas" / posixpath.basename(v2_runner.IMAGE_SCHEMA_FILE)).is_file()
    # What setup.py packages, and the rest of the project.
    for path in (
        "setup.py",
        "local_runner.py",
        "pipeline",
        "components",
        "reporting",
        "serving",
        "kubeflow",
    ):
        assert in_image[f"{workdir}/{path}"] == path


def test_the_image_imports_the_module_files_and_tfx_entrypoint():
    imports = " ".join(
        " ".join(command) for command in _dockerfile_commands() if command[:2] == ["python", "-c"]
    )
    for module in (
        "pipeline.modules.transform.mnist_transform",
        "pipeline.modules.trainer.mnist_trainer",
        "components.mnist_example_gen",
        # The command of every step in the compiled file (KubeflowV2DagRunner).
        "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
    ):
        assert module in imports, module


def test_the_compiled_steps_run_the_entrypoint_the_image_checks(compiled_file):
    import json

    executors = json.loads(compiled_file.read_text())["pipelineSpec"]["deploymentSpec"]["executors"]
    commands = {
        tuple(executor["container"]["command"])
        for executor in executors.values()
        if "container" in executor
    }
    # The image's task entrypoint, which hands over to TFX's executor (imported by the build).
    assert commands == {("python", "/pipeline/kubeflow/task_entrypoint.py")}
    assert "COPY kubeflow/ kubeflow/" in DOCKERFILE and "WORKDIR /pipeline" in DOCKERFILE
    assert "kubeflow_v2_run_executor" in DOCKERFILE


@pytest.mark.parametrize("file_name", ["DOCKERFILE", "MAKEFILE"])
def test_the_flag_check_fails_if_either_file_drifts(file_name, monkeypatch):
    text = globals()[file_name]
    drifted = text.replace("--ignore-requires-python -r", "-r")
    assert drifted != text
    monkeypatch.setitem(globals(), file_name, drifted)
    with pytest.raises(AssertionError):
        test_the_lock_is_installed_with_the_makefiles_pip_flags()


def test_the_installed_package_carries_the_module_files(tmp_path):
    # Build from a clean copy: a build/ left in the checkout could mask a missing file.
    source = tmp_path / "src"
    shutil.copytree(
        PROJECT_ROOT,
        source,
        ignore=shutil.ignore_patterns("build", ".venv", "output", "*.egg-info", ".git"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "pipeline/modules/transform/mnist_transform.py",
        "pipeline/modules/trainer/mnist_trainer.py",
        "components/mnist_example_gen.py",
        "pipeline/pipeline.py",
    ):
        assert module in names, module


def test_beam_worker_boot_matches_the_locked_python_and_beam():
    """The image doubles as Beam's SDK container: its boot program must come from
    Beam's image for the lock's Beam version and Python 3.11."""
    lock = (PROJECT_ROOT / "requirements" / "requirements.lock").read_text()
    (beam_version,) = re.findall(r"^apache-beam==(\S+)$", lock, flags=re.MULTILINE)
    instructions = _dockerfile_instructions()
    assert (
        "COPY",
        f"--from=apache/beam_python3.11_sdk:{beam_version} /opt/apache/beam /opt/apache/beam",
    ) in instructions
    assert ("ENTRYPOINT", '["/opt/apache/beam/boot"]') in instructions
