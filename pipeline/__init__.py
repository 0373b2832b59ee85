"""The MNIST TFX pipeline: definition, configuration and module files."""
