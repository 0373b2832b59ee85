"""Module files for Transform and Trainer.

Each lives in a directory of its own: TFX packages every .py beside a module
file into the user-code wheel and hashes it for caching, so an unrelated edit
next to it would silently rerun the component.
"""
