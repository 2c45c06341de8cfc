"""Prompt service: an OpenAI-compatible prompt gateway with cache, usage ledger and metrics."""

__version__ = "0.1.0"
