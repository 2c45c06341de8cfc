"""Options every Rancher API module of this collection shares (connection to the API)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description: Base URL of the Rancher API.
    type: str
    required: true
  validate_certs:
    description: Check the server's certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle to check the server's certificate with.
    type: path
"""
