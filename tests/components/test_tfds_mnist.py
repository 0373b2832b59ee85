"""TFDS preparation: offline from the archives, and clear errors for bad ones."""

import os
import pathlib
import shutil

import pytest

from components import tfds_mnist


def test_registered_checksums_match_vendored_sha256sums(mnist_dir):
    sums = dict(
        reversed(line.split())
        for line in pathlib.Path(mnist_dir, "SHA256SUMS").read_text().splitlines()
    )
    assert tfds_mnist.registered_checksums() == sums


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


def test_corrupt_archive_stops_with_file_name_and_fix(mnist_dir, tmp_path):
    archives = tmp_path / "archives"
    shutil.copytree(mnist_dir, archives)
    corrupt = archives / "train-labels-idx1-ubyte.gz"
    data = bytearray(corrupt.read_bytes())
    data[100:107] = b"garbage"
    corrupt.write_bytes(bytes(data))

    with pytest.raises(tfds_mnist.MnistArchiveError) as raised:
        tfds_mnist.prepare_mnist(str(archives), str(tmp_path / "tfds"))

    message = str(raised.value)
    assert str(corrupt) in message
    assert "sha256sum -c SHA256SUMS" in message
    assert "--mnist-dir" in message
    assert not (tmp_path / "tfds" / "mnist" / "3.0.1").exists()
