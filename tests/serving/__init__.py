"""Tests of the serving package: image framing and the predict command."""
