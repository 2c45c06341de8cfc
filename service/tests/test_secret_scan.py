"""The session-wide check for leaked keys can fail."""

from __future__ import annotations

import logging

from tests.conftest import SessionOutput, find_secrets


def test_the_scan_finds_a_key_in_a_log_line_or_a_response() -> None:
    clean = SessionOutput()
    clean.responses.append(b'{"error": {"message": "The upstream failed to answer."}}')
    leaky = SessionOutput()
    leaky.responses.append(b'{"error": {"message": "Incorrect API key provided: sk-abc"}}')
    leaky.log.emit(logging.makeLogRecord({"msg": "calling with %s", "args": ("sk-xyz",)}))

    assert find_secrets(clean) == []
    assert len(find_secrets(leaky)) == 2


def test_the_suite_upstream_key_looks_like_a_real_one() -> None:
    from tests.fake_upstream import DEFAULT_API_KEY

    assert DEFAULT_API_KEY.startswith("sk-")
