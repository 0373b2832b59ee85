"""Prepares MNIST with the real TFDS builder, offline when the archives are local.

TFDS does the work that matters here: it reads the four IDX archives, checks
their SHA-256 against the sums it registers for `mnist`, and writes its own
TFRecords. This module only picks the download mode and turns TFDS's checksum
error into one that tells the user which file is wrong and how to fix it.
"""

import hashlib
import logging
import os

import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from contract.errors import MnistArchiveError

DATASET_NAME = "mnist"

ARCHIVE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def has_all_archives(mnist_dir: str) -> bool:
    """Tells whether `mnist_dir` holds the four MNIST archives TFDS needs."""
    return bool(mnist_dir) and all(
        os.path.isfile(os.path.join(mnist_dir, name)) for name in ARCHIVE_NAMES
    )


def archive_sha256(mnist_dir: str) -> dict[str, str]:
    """{archive file name: SHA-256} of the four archives in `mnist_dir`, as read now.

    About 11 MB in all: well under a second, so it is done on every run.
    """
    sums = {}
    for name in ARCHIVE_NAMES:
        with open(os.path.join(mnist_dir, name), "rb") as source:
            sums[name] = hashlib.file_digest(source, "sha256").hexdigest()
    return sums


def verify_archives(mnist_dir: str) -> dict[str, str]:
    """Checks the archives against TFDS's registered checksums; returns their sums.

    TFDS checks the archives only when it prepares MNIST; once a prepared copy
    exists it reuses it without looking at them again. This check runs every
    time, so a replaced or corrupt archive is an error on every run, not only
    on the first.

    Raises:
      MnistArchiveError: an archive's SHA-256 differs from TFDS's (names it).
    """
    registered = registered_checksums()
    sums = archive_sha256(mnist_dir)
    for name, actual in sums.items():
        if actual != registered.get(name):
            path = os.path.join(mnist_dir, name)
            raise MnistArchiveError(
                f"MNIST archive {path} has SHA-256 {actual}, but TFDS registers "
                f"{registered.get(name)} for it (wrong checksum).\n" + _FIX
            )
    return sums


_FIX = (
    "The file named above is corrupt, truncated or not the original MNIST "
    "release. Fix: replace it with the original archive (check all four with "
    "`sha256sum -c SHA256SUMS` in data/mnist/), or pass --mnist-dir DIR with "
    "a folder that holds the four original archives."
)


def prepare_mnist(
    mnist_dir: str, tfds_data_dir: str, allow_download: bool = False
) -> tfds.core.DatasetBuilder:
    """Runs TFDS `download_and_prepare` for MNIST and returns the builder.

    Args:
      mnist_dir: Folder with the four original archives, used as TFDS's manual
        download dir; checked against TFDS's checksums on every call.
      tfds_data_dir: Where TFDS keeps its prepared dataset; reused across runs.
      allow_download: Without the archives, let TFDS download MNIST from the
        internet (else that is an error).

    Returns:
      The prepared TFDS builder.

    Raises:
      MnistArchiveError: an archive is missing (and no download allowed) or
        has the wrong checksum.
    """
    builder = tfds.builder(DATASET_NAME, data_dir=tfds_data_dir or None)
    if has_all_archives(mnist_dir):
        verify_archives(mnist_dir)
        logging.info("Preparing TFDS %s from local archives in %s", DATASET_NAME, mnist_dir)
        download_config = tfds.download.DownloadConfig(manual_dir=mnist_dir)
    elif not allow_download:
        raise MnistArchiveError(
            f"{mnist_dir!r} does not hold the four MNIST archives ({', '.join(ARCHIVE_NAMES)}). "
            "Fix: pass --mnist-dir DIR with a folder that holds them, or --download to let "
            "TFDS download MNIST from the internet."
        )
    else:
        logging.warning(
            "No complete set of MNIST archives in %r: TFDS reuses %s if MNIST is prepared "
            "there, else downloads it.",
            mnist_dir,
            tfds_data_dir,
        )
        download_config = tfds.download.DownloadConfig()
    try:
        builder.download_and_prepare(download_config=download_config)
    except download_manager.NonMatchingChecksumError as error:
        raise MnistArchiveError(f"TFDS rejected an MNIST archive: {error}\n" + _FIX) from error
    return builder


def registered_checksums() -> dict[str, str]:
    """Returns {archive file name: SHA-256} as TFDS registers them for MNIST.

    TFDS has verified the archives against exactly these sums, so they identify
    the data the pipeline was built from.
    """
    url_infos = tfds.builder_cls(DATASET_NAME).url_infos or {}
    return {
        (info.filename or os.path.basename(url)): info.checksum
        for url, info in sorted(url_infos.items())
    }
