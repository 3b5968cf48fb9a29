"""The job record type and its decoding agree: every field the hash holds has one declared
type, and `decode` gives each the type the record declares."""

from __future__ import annotations

import typing

from app.kernel.states import TERMINAL, JobState
from app.store.jobrecord import FLOAT_FIELDS, INT_FIELDS, JSON_FIELDS, JobRecord
from app.store.jobstore import decode

HINTS = typing.get_type_hints(JobRecord)


def test_every_decoded_field_is_declared_with_the_type_decode_gives_it():
    for name in INT_FIELDS:
        assert HINTS[name] is int, name
    for name in FLOAT_FIELDS:
        assert float in typing.get_args(HINTS[name]) or HINTS[name] is float, name
    for name in JSON_FIELDS:
        assert name in HINTS, name
    assert HINTS["status"] is JobState and HINTS["truncated"] is bool


def test_a_sparse_hash_decodes_to_zero_counters_none_times_and_a_state():
    job = decode({"status": "waiting_vendor", "tool": "hubspot.contacts.list", "seq": "3"})
    assert job["status"] is JobState.WAITING_VENDOR and job["seq"] == 3
    assert all(job[f] == 0 for f in INT_FIELDS if f != "seq")
    assert all(job[f] is None for f in FLOAT_FIELDS + JSON_FIELDS)
    assert job["truncated"] is False


def test_the_state_enum_owns_terminal():
    assert {s for s in JobState if s.terminal} == TERMINAL
    assert {s.value for s in TERMINAL} == {
        "succeeded", "completed_with_errors", "failed", "cancelled"
    }
