"""Serving tools: predict digits from image files with a released model.

`python -m serving.predict` is the entry point (see its docstring). This
package reads releases through `contract.releases` and imports nothing else of
the project (tests/test_architecture.py): it is what a client of the serving
directory needs, nothing more.
"""

import os
import warnings

# Set before any module of this package imports TensorFlow, so the command
# line prints its results, not TensorFlow's start-up noise: C++ logs (model
# errors still surface as Python exceptions) and google.api_core's Python 3.11
# end-of-support notice. tf-keras as everywhere in the project: nothing here
# uses Keras, but a process that imports this package first and Keras later
# gets the pipeline's Keras.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core")
