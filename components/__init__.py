"""Custom TFX components of the MNIST pipeline."""
