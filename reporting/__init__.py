"""Reporting on runs and releases: run summary, lineage, HTML run report, model card."""
