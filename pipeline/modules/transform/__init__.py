"""The Transform module file (preprocessing_fn); nothing else may live here."""
