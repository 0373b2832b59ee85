"""TFDS preparation: offline from the archives, and clear errors for bad ones."""

import hashlib
import os
import pathlib
import shutil

import pytest

from components import tfds_mnist


def _vendored_sums(mnist_dir) -> dict[str, str]:
    return dict(
        reversed(line.split())
        for line in pathlib.Path(mnist_dir, "SHA256SUMS").read_text().splitlines()
    )


def _copy_archives(mnist_dir, tmp_path) -> pathlib.Path:
    archives = tmp_path / "archives"
    archives.mkdir()
    for name in tfds_mnist.ARCHIVE_NAMES:
        shutil.copy(os.path.join(mnist_dir, name), archives)
    return archives


def test_registered_checksums_match_vendored_sha256sums(mnist_dir):
    assert tfds_mnist.registered_checksums() == _vendored_sums(mnist_dir)


def test_has_all_archives_needs_all_four(mnist_dir, tmp_path):
    assert tfds_mnist.has_all_archives(mnist_dir)
    for name in tfds_mnist.ARCHIVE_NAMES[:3]:
        shutil.copy(os.path.join(mnist_dir, name), tmp_path)
    assert not tfds_mnist.has_all_archives(str(tmp_path))
    assert not tfds_mnist.has_all_archives("")


def test_prepared_builder_has_the_mnist_splits(tfds_data_dir, mnist_dir):
    builder = tfds_mnist.prepare_mnist(mnist_dir, tfds_data_dir)
    assert builder.info.splits["train"].num_examples == 60_000
    assert builder.info.splits["test"].num_examples == 10_000


def test_archive_sha256_equals_vendored_sha256sums(mnist_dir):
    assert tfds_mnist.archive_sha256(mnist_dir) == _vendored_sums(mnist_dir)


def test_archive_sha256_reads_the_files_as_they_are_now(mnist_dir, tmp_path):
    archives = _copy_archives(mnist_dir, tmp_path)
    (archives / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the labels")
    expected = _vendored_sums(mnist_dir)
    expected["t10k-labels-idx1-ubyte.gz"] = hashlib.sha256(b"not the labels").hexdigest()
    assert tfds_mnist.archive_sha256(str(archives)) == expected


@pytest.mark.parametrize("archives_present", [0, 3])
def test_missing_archives_without_download_say_how_to_fix(archives_present, mnist_dir, tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    for name in tfds_mnist.ARCHIVE_NAMES[:archives_present]:
        shutil.copy(os.path.join(mnist_dir, name), archives)

    with pytest.raises(tfds_mnist.MnistArchiveError) as raised:
        tfds_mnist.prepare_mnist(str(archives), str(tmp_path / "tfds"))

    message = str(raised.value)
    assert str(archives) in message
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "--mnist-dir" in message and "--download" in message
    assert not (tmp_path / "tfds" / "mnist").exists(), "nothing may be downloaded or prepared"


def _garbage(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:107] = b"garbage"
    path.write_bytes(bytes(data))


def _truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _other_archive(path: pathlib.Path) -> None:
    # A well-formed MNIST archive, but not this one: the test labels.
    shutil.copy(path.parent / "t10k-labels-idx1-ubyte.gz", path)


CORRUPTIONS = {"garbage": _garbage, "truncated": _truncate, "other_archive": _other_archive}


@pytest.fixture
def prepared_tfds_copy(tfds_data_dir, tmp_path) -> pathlib.Path:
    """A TFDS dir where MNIST is already prepared: what an earlier run leaves behind."""
    copy = tmp_path / "prepared_tfds"
    shutil.copytree(os.path.join(tfds_data_dir, "mnist"), copy / "mnist")
    return copy


def _assert_names_the_file_and_the_fix(raised, corrupt: pathlib.Path) -> None:
    message = str(raised.value)
    assert str(corrupt) in message
    assert "wrong checksum" in message
    assert "sha256sum -c SHA256SUMS" in message
    assert "--mnist-dir" in message


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_archive_stops_with_file_name_and_fix(corruption, mnist_dir, tmp_path):
    archives = _copy_archives(mnist_dir, tmp_path)
    corrupt = archives / "train-labels-idx1-ubyte.gz"
    CORRUPTIONS[corruption](corrupt)

    with pytest.raises(tfds_mnist.MnistArchiveError) as raised:
        tfds_mnist.prepare_mnist(str(archives), str(tmp_path / "tfds"))

    _assert_names_the_file_and_the_fix(raised, corrupt)
    assert not (tmp_path / "tfds" / "mnist" / "3.0.1").exists()


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_archive_stops_even_when_mnist_is_already_prepared(
    corruption, mnist_dir, tmp_path, prepared_tfds_copy
):
    archives = _copy_archives(mnist_dir, tmp_path)
    builder = tfds_mnist.prepare_mnist(str(archives), str(prepared_tfds_copy))
    assert builder.info.splits["train"].num_examples == 60_000
    assert not (prepared_tfds_copy / "downloads").exists(), "reused, not prepared again"
    corrupt = archives / "train-images-idx3-ubyte.gz"
    original = corrupt.read_bytes()
    CORRUPTIONS[corruption](corrupt)

    with pytest.raises(tfds_mnist.MnistArchiveError) as raised:
        tfds_mnist.prepare_mnist(str(archives), str(prepared_tfds_copy))

    _assert_names_the_file_and_the_fix(raised, corrupt)
    # The fix the message gives works: with the original archive back, the
    # prepared copy is used again.
    corrupt.write_bytes(original)
    builder = tfds_mnist.prepare_mnist(str(archives), str(prepared_tfds_copy))
    assert builder.info.splits["test"].num_examples == 10_000
