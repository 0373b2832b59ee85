"""The Trainer module file (run_fn); nothing else may live here."""
