"""IPR transcript analysis: ingest, align, code, export and report IPR interviews and therapy sessions."""

__version__ = "0.1.0"
