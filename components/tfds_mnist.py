"""Prepares MNIST with the real TFDS builder, offline when the archives are local.

TFDS does the work that matters here: it reads the four IDX archives, checks
their SHA-256 against the sums it registers for `mnist`, and writes its own
TFRecords. This module only picks the download mode and turns TFDS's checksum
error into one that tells the user which file is wrong and how to fix it.
"""

import logging
import os

import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

DATASET_NAME = "mnist"

ARCHIVE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class MnistArchiveError(RuntimeError):
    """An MNIST archive is corrupt, truncated or not the original release."""


def has_all_archives(mnist_dir: str) -> bool:
    """Tells whether `mnist_dir` holds the four MNIST archives TFDS needs."""
    return bool(mnist_dir) and all(
        os.path.isfile(os.path.join(mnist_dir, name)) for name in ARCHIVE_NAMES
    )


def prepare_mnist(mnist_dir: str, tfds_data_dir: str) -> tfds.core.DatasetBuilder:
    """Runs TFDS `download_and_prepare` for MNIST and returns the builder.

    Args:
      mnist_dir: Folder with the four original archives, used as TFDS's manual
        download dir. When it lacks any of them TFDS downloads from the internet.
      tfds_data_dir: Where TFDS keeps its prepared dataset; reused across runs.

    Returns:
      The prepared TFDS builder.

    Raises:
      MnistArchiveError: TFDS rejected an archive (wrong checksum).
    """
    builder = tfds.builder(DATASET_NAME, data_dir=tfds_data_dir or None)
    if has_all_archives(mnist_dir):
        logging.info("Preparing TFDS %s from local archives in %s", DATASET_NAME, mnist_dir)
        download_config = tfds.download.DownloadConfig(manual_dir=mnist_dir)
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
        raise MnistArchiveError(
            f"TFDS rejected an MNIST archive: {error}\n"
            "The file named above is corrupt, truncated or not the original MNIST "
            "release. Fix: replace it with the original archive (check all four with "
            "`sha256sum -c SHA256SUMS` in data/mnist/), or pass --mnist-dir DIR with "
            "a folder that holds the four original archives."
        ) from error
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
