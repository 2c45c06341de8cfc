"""Cross-cutting pieces: settings, logging, metrics, the per-request record."""
