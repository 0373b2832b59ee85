"""A directory shaped like a SavedModel, for tests that only fingerprint or copy it."""

import os


def write_fake_saved_model(model_dir, variables=b"weights-1") -> str:
    """Writes saved_model.pb and variables/ with fixed bytes (no TensorFlow needed)."""
    os.makedirs(os.path.join(model_dir, "variables"), exist_ok=True)
    files = {
        "saved_model.pb": b"graph",
        "variables/variables.index": b"index",
        "variables/variables.data-00000-of-00001": variables,
    }
    for name, data in files.items():
        with open(os.path.join(model_dir, name), "wb") as out:
            out.write(data)
    return str(model_dir)
