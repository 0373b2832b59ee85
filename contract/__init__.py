"""The leaf of the project: what every other package agrees on, importing none of them.

Dependencies point one way: runners -> `pipeline` -> `components` -> `contract`,
and `reporting` and `serving` read artifacts through `contract` alone (plus
`reporting.metadata`, the one ML Metadata reader). A test
(`tests/test_architecture.py`) follows every import transitively and fails
on an edge that points back.

- `contract.features`: feature names and shapes, split names, the serving
  signatures' names and outputs.
- `contract.files`: the files artifacts hold (release manifest, training
  record, TFLite models, warmup requests, model card, anomaly reports).
- `contract.releases`: the serving directory's format (numbered versions,
  manifests, fingerprints) and the check that a release still matches its
  manifest.
- `contract.evaluation`: readers of TFMA's outputs (accuracy, slices,
  confusions, gates).
- `contract.artifacts`: readers of the other artifacts the components write.
- `contract.errors`: the input errors components raise and runners explain.
- `contract.tfx_internals`: every use of a TFX API that is not public, each
  with a test of the assumption it makes.

The Keras environment is set here, the one place in the project: TFX 1.16
saves models with tf-keras, and `tf.keras` reads TF_USE_LEGACY_KERAS on its
first use (TensorFlow's Keras lazy loader), which every project module
reaches only after importing this package.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
