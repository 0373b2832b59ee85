"""The MNIST TFX pipeline as a package: what the runners import and Beam workers install."""

import setuptools

setuptools.setup(
    name="mnist-tfx-pipeline",
    version="0.1.0",
    description="TFX pipeline: MNIST from TFDS to a released, audited Keras model.",
    python_requires=">=3.11",  # the lock is resolved for 3.11, here and in the image
    packages=setuptools.find_packages(
        include=[
            "contract",
            "contract.*",
            "pipeline",
            "pipeline.*",
            "components",
            "components.*",
            "reporting",
            "reporting.*",
            "serving",
            "serving.*",
        ]
    ),
    py_modules=["local_runner"],
    # The report's and model card's jinja2 templates.
    package_data={"reporting": ["templates/*.j2"], "components": ["templates/*.j2"]},
    include_package_data=False,
)
