"""The spool's pure parts: packing records under the cap, the size reserve, projection.

No Redis here: `Packer`, `reserve`, `envelope`, `render`, `render_event` and `project` are
pure. The property tests draw a few hundred record sets from a seeded `random.Random`
(multi-byte UTF-8, control characters, quotes and backslashes included), so a failure
repeats exactly.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import uuid
from typing import Any

import pytest

from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL
from app.kernel.timefmt import now_iso
from app.store import spool

# 1-byte, escaped (2 and 6 bytes), 2-, 3- and 4-byte UTF-8, and JSON-legal oddities.
ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:;/")
    + ['"', "\\", "\x00", "\x01", "\x1f", "\n", "\t", "\x7f"]
    + ["é", "ß", "Ł", "Д", "李", "雷", "€", "\u2028", "\u2029", "\ufeff", "𠮷", "😀", "\U0010ffff"]
)
TOOL_NAMES = [*registry().tools, "salesforce.opportunities.list", "x.y"]


def text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def record(rng: random.Random, i: int) -> dict[str, Any]:
    props: dict[str, Any] = {text(rng, rng.randint(1, 8)): text(rng, rng.randint(0, 40))
                             for _ in range(rng.randint(0, 5))}
    props["count"] = rng.choice([0, -1, 10**18, 3.5, None, True, False])
    props["tags"] = [text(rng, rng.randint(0, 5)) for _ in range(rng.randint(0, 3))]
    return {"id": str(i), "properties": props}


def block_bytes(texts: list[str]) -> int:
    """Bytes the JSON array of these spooled records takes (what the packer budgets)."""
    return len(("[" + ",".join(texts) + "]").encode())


def random_job_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def continuation_token(rng: random.Random) -> str:
    """Same shape as `save_continuation`'s: prefix + token_urlsafe(32)."""
    return spool.CONTINUATION_PREFIX + base64.urlsafe_b64encode(rng.randbytes(32)).decode()[:43]


# ---- Packer ------------------------------------------------------------------------------


def test_packer_exact_fit_and_one_byte_short() -> None:
    recs = ['{"id":"1"}', '{"id":"2"}']  # 10 bytes each: "[" + 10 + "," + 10 + "]" = 23
    exact = spool.Packer(budget=23)
    assert [exact.place(t) for t in recs] == [0, 0]
    assert exact.block_bytes == 23
    short = spool.Packer(budget=22)
    assert [short.place(t) for t in recs] == [0, None]
    assert short.block_bytes == 12 and short.block_records == 1

    two_blocks = spool.Packer(budget=22, max_blocks=2)
    assert [two_blocks.place(t) for t in recs] == [0, 1]
    assert (two_blocks.block, two_blocks.block_bytes, two_blocks.block_records) == (1, 12, 1)


def test_packer_counts_utf8_bytes_not_characters() -> None:
    rec = spool.dumps({"n": "𠮷乃"})  # 10 characters, 15 bytes
    assert len(rec) == 10 and len(rec.encode()) == 15
    assert spool.Packer(budget=17).place(rec) == 0
    assert spool.Packer(budget=16).place(rec) is None
    assert spool.Packer(budget=17).fits_alone(rec)
    assert not spool.Packer(budget=16).fits_alone(rec)


@pytest.mark.parametrize("seed", range(300))
def test_packer_property(seed: int) -> None:
    """In order, blocks filled greedily and never over budget; resumable from its state."""
    rng = random.Random(seed)
    budget = rng.randint(40, 4000)
    max_blocks = rng.choice([1, 2, 3, 7, 1024])
    texts = [spool.dumps(record(rng, i)) for i in range(rng.randint(0, 120))]
    texts = [t for t in texts if spool.Packer(budget).fits_alone(t)]  # the step fails others

    packer = spool.Packer(budget=budget, max_blocks=max_blocks)
    split = rng.randint(0, len(texts))
    placed: list[int] = []
    stopped_at: int | None = None
    for n, t in enumerate(texts):
        if n == split:  # a new step rebuilds the packer from the job's checkpointed fields
            packer = spool.Packer(budget=budget, block=packer.block,
                                  block_bytes=packer.block_bytes,
                                  block_records=packer.block_records, max_blocks=max_blocks)
        block = packer.place(t)
        if block is None:
            stopped_at = n
            break
        placed.append(block)

    # Blocks are consecutive and start at 0: records stay in order.
    assert placed == sorted(placed)
    assert all(b - a in (0, 1) for a, b in zip([0, *placed], placed, strict=False))
    assert all(0 <= b < max_blocks for b in placed)
    blocks: dict[int, list[str]] = {}
    for t, b in zip(texts, placed, strict=False):
        blocks.setdefault(b, []).append(t)
    for b, members in blocks.items():
        assert block_bytes(members) <= budget, f"block {b} over budget"
        nxt = b + 1
        if nxt in blocks:  # greedy: the next block's first record really did not fit
            assert block_bytes([*members, blocks[nxt][0]]) > budget
    if blocks:
        last = max(blocks)
        assert packer.block == last
        assert packer.block_bytes == block_bytes(blocks[last])
        assert packer.block_records == len(blocks[last])
    if stopped_at is not None:  # refused only when every allowed block is full
        assert max(placed, default=0) == max_blocks - 1
        assert block_bytes([*blocks.get(max_blocks - 1, []), texts[stopped_at]]) > budget
    else:
        assert len(placed) == len(texts)


class OnePerRecord(spool.Packer):
    """The greedy rule stated one record at a time (the packer's first form): the oracle the
    page-at-a-time bisection is checked against."""

    def place(self, record: str | bytes) -> int | None:
        n = len(record)
        if self.block_bytes + n + (1 if self.block_records else 0) > self.budget:
            if self.block + 1 >= self.max_blocks:
                return None
            self.block += 1
            self.block_bytes, self.block_records = 2, 0
        self.block_bytes += n + (1 if self.block_records else 0)  # a comma before all but one
        self.block_records += 1
        return self.block


@pytest.mark.parametrize("seed", range(200))
def test_place_many_places_as_place_does(seed: int) -> None:
    """The step's page-at-a-time placement equals record-at-a-time `place`, state included,
    and stops at the same record: the first that fits no allowed block (or not even alone)."""
    rng = random.Random(seed)
    budget = rng.randint(40, 2000)
    max_blocks = rng.choice([1, 2, 3, 1024])
    texts = [spool.encode_record(record(rng, i)) for i in range(rng.randint(0, 150))]
    one = OnePerRecord(budget=budget, max_blocks=max_blocks)
    many = spool.Packer(budget=budget, max_blocks=max_blocks)
    expected: dict[int, list[bytes]] = {}
    got: dict[int, list[bytes]] = {}
    i = 0
    while i < len(texts):
        page = texts[i : i + rng.randint(1, 40)]
        placed, n = many.place_many(page)
        for block, members in placed.items():
            got.setdefault(block, []).extend(members)
        for t in page[:n]:
            block = one.place(t)
            assert block is not None
            expected.setdefault(block, []).append(t)
        assert (many.block, many.block_bytes, many.block_records) == (
            one.block, one.block_bytes, one.block_records)
        if n < len(page):  # stopped: the next record fits nowhere
            t = page[n]
            assert not one.fits_alone(t) or one.place(t) is None
            break
        i += len(page)
    assert got == expected


# ---- reserve: every rendered body stays under max_bytes ------------------------------------


def worst_job(rng: random.Random, tool: str) -> dict[str, Any]:
    """A finished job with everything the envelope can carry, in its worst encodings.

    Page and record counters go up to reserve's own 10**15; an export job has at most
    `block_limit` blocks (the packer stops there), so its block counters stay below that.
    """
    status = rng.choice(sorted(TERMINAL))
    kind = rng.choice(["controls", "mixed", "quotes", "multibyte"])
    length = rng.choice([0, 1, spool.ERROR_MESSAGE_MAX - 1, spool.ERROR_MESSAGE_MAX, 5000])
    message = {
        "controls": "\x00" * length,
        "mixed": text(rng, length),
        "quotes": '"\\' * length,
        "multibyte": "𠮷" * length,
    }[kind]
    code = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_.0123456789")
                   for _ in range(rng.choice([1, 20, 64, 200])))
    big = rng.choice([rng.randint(0, 10**6), 10**15])
    block_limit = get_settings().block_limit
    started = rng.uniform(1.5e9, 4.1e9)
    job: dict[str, Any] = {
        "tool": tool, "status": status, "pages": big, "records": big,
        "started_at": started, "finished_at": started + rng.uniform(0, 1e6),
        "truncated": rng.random() < 0.7,
        "delivery": rng.choice(["single", "blocks"]),
        "blocks": rng.choice([1, rng.randint(1, block_limit), block_limit]),
    }
    if job["truncated"]:
        job["continuation"] = continuation_token(rng)
    if rng.random() < 0.7 or status == "failed":
        job["error"] = {"code": code, "message": message, "record_id": "x" * 50}
    return job


def fill(rng: random.Random, budget: int) -> list[str]:
    """Records the packer accepts into one block, topped up so the block is exactly full."""
    packer = spool.Packer(budget=budget)
    out: list[str] = []
    pool = [record(rng, i) for i in range(40)]
    for i in range(10**6):
        t = spool.dumps({**pool[i % len(pool)], "id": str(i)})
        if packer.place(t) is None:
            break
        out.append(t)
    room = budget - packer.block_bytes - (1 if out else 0)
    overhead = len(spool.dumps({"f": ""}).encode())
    if room >= overhead:
        filler = spool.dumps({"f": "x" * (room - overhead)})
        assert packer.place(filler) == 0
        out.append(filler)
    assert packer.block_bytes == block_bytes(out) and budget - block_bytes(out) <= overhead
    return out


@pytest.mark.parametrize("seed", range(300))
def test_reserve_keeps_result_and_webhook_under_cap(seed: int) -> None:
    rng = random.Random(10_000 + seed)
    job_id = random_job_id(rng)
    tool = rng.choice(TOOL_NAMES)
    max_bytes = rng.choice([4096, 4097, 8192, rng.randint(4096, 131072), 131072])
    budget = max_bytes - spool.reserve(job_id, tool)
    assert budget > 1000  # a 4 KiB cap must still leave room for records
    records = fill(rng, budget)
    job = worst_job(rng, tool)
    block = rng.randint(0, max(job["blocks"] - 1, 0))

    body = spool.render(spool.envelope(job_id, job, block=block), records)
    assert len(body) <= max_bytes
    event = spool.render_event(f"job.{job['status']}", body,
                               now_iso(rng.uniform(1.5e9, 4.1e9)))
    assert len(event) <= max_bytes

    # Both are valid JSON and carry the records intact (multi-byte, escapes and all).
    decoded = json.loads(event.decode("utf-8"))
    assert decoded["data"] == json.loads(body)
    assert decoded["data"]["records"] == [json.loads(t) for t in records]
    assert decoded["data"]["record_count"] == len(records)
    assert decoded["data"]["job_id"] == job_id
    if job["truncated"]:
        assert decoded["data"]["continuation"] == job["continuation"]
    if job.get("error"):
        assert decoded["data"]["error"]["code"] == job["error"]["code"][:64]
        assert decoded["data"]["error"]["message"] == job["error"]["message"][:300]


@pytest.mark.parametrize("seed", range(200))
def test_reserve_keeps_a_partial_read_of_a_full_block_under_cap(seed: int) -> None:
    """A partial read (`GET …/result?after=`, `Client.wait`, MCP `job_wait`) adds `done`,
    `progress` and a partial cursor to the envelope, and carries a running job's status."""
    from app.kernel.states import JobState

    rng = random.Random(20_000 + seed)
    job_id = random_job_id(rng)
    tool = rng.choice(TOOL_NAMES)
    max_bytes = rng.choice([4096, 4097, rng.randint(4096, 131072), 131072])
    records = fill(rng, max_bytes - spool.reserve(job_id, tool))
    job = worst_job(rng, tool)
    job["status"] = rng.choice(list(JobState))
    job["bytes"] = rng.choice([rng.randint(0, 10**9), 10**15])
    block = rng.randint(0, max(job["blocks"] - 1, 0))
    big = 999_999_999  # the largest block and run a partial cursor may name
    token = spool.partial_token(rng.choice([block, big]), rng.choice([0, len(records), big]))
    done = rng.random() < 0.3
    env = spool.envelope(job_id, job, block=block, done=done, partial=None if done else token)
    runs = [",".join(records[i : i + 7]) for i in range(0, len(records), 7)]
    body = spool.render(env, runs, len(records))
    assert len(body) <= max_bytes

    decoded = json.loads(body)
    assert decoded["records"] == [json.loads(t) for t in records]
    assert decoded["record_count"] == len(records) and decoded["done"] is done
    assert decoded["status"] == job["status"]
    assert decoded["progress"]["pages"] == job["pages"]
    if not done:
        assert decoded["continuation"] == token
    elif job["truncated"]:
        assert decoded["continuation"] == job["continuation"]


def test_partial_cursor_round_trip_and_rejects() -> None:
    assert spool.parse_partial(spool.partial_token(0, 0)) == (0, 0)
    assert spool.parse_partial("p:12.345") == (12, 345)
    for bad in ["", "p:", "p:1", "p:1.", "p:.1", "p:01.2", "p:1.02", "p:-1.0", "p:1.0 ",
                "P:1.0", "p:1.0.0", "p:1234567890.0", "tqc_" + "x" * 43, "p:١.٢"]:
        assert spool.parse_partial(bad) is None, bad


def test_reserve_depends_only_on_id_length_and_tool() -> None:
    """Callers (and the integration tests) size caps from a dummy uuid4."""
    rng = random.Random(7)
    for tool in TOOL_NAMES:
        sizes = {spool.reserve(random_job_id(rng), tool) for _ in range(50)}
        assert len(sizes) == 1
    assert spool.reserve(str(uuid.uuid4()), "a.b") < spool.reserve(str(uuid.uuid4()), "a.bb")


def test_reserve_is_at_least_the_worst_envelope_it_describes() -> None:
    job_id, tool, big = str(uuid.uuid4()), "hubspot.contacts.list", 10**15
    job = {"tool": tool, "status": "succeeded", "truncated": True, "pages": big,
           "started_at": 4.1e9, "finished_at": 4.1e9,
           "continuation": "c" * spool.CONTINUATION_LEN, "delivery": "blocks", "blocks": big,
           "records": big, "error": {"code": "x" * 64, "message": "\x00" * 300}}
    env = spool.envelope(job_id, job, block=big)
    head = spool.dumps({**env, "record_count": big})  # render() would put len(records) here
    body = (head[:-1] + ',"records":[]}').encode()
    event = spool.render_event("job.succeeded", body, now_iso())
    # The packer lets "[...]" take max_bytes - reserve, so the rest must fit in reserve + 2.
    assert len(event) <= spool.reserve(job_id, tool) + 2


def test_reserve_covers_error_code_with_control_characters() -> None:
    job_id, tool, max_bytes = str(uuid.uuid4()), "hubspot.contacts.list", 4096
    records = fill(random.Random(1), max_bytes - spool.reserve(job_id, tool))
    job = {"tool": tool, "status": "failed", "started_at": 1.7e9, "finished_at": 1.7e9,
           "pages": 10**6, "records": 10**6, "delivery": "blocks", "blocks": 1024,
           "error": {"code": "\x01" * 64, "message": "\x01" * 300}}
    body = spool.render(spool.envelope(job_id, job, block=1023), records)
    assert len(spool.render_event("job.failed", body, now_iso())) <= max_bytes
    code = json.loads(body)["error"]["code"]
    assert code and all(" " < ch < "\x7f" for ch in code)  # still a machine-readable code


def test_render_survives_lone_surrogates_from_the_vendor() -> None:
    job_id, tool = str(uuid.uuid4()), "hubspot.contacts.list"
    vendor_doc = json.loads('{"message": "bad \\ud800 input", "name": "x\\udfff"}')
    job = {"tool": tool, "status": "failed", "started_at": 1.7e9, "finished_at": 1.7e9,
           "error": {"code": "VALIDATION_ERROR", "message": vendor_doc["message"]}}
    records = [spool.dumps({"id": "1", "name": vendor_doc["name"]})]
    body = spool.render(spool.envelope(job_id, job), records)
    decoded = json.loads(body.decode("utf-8"))
    assert decoded["error"]["message"] == vendor_doc["message"]
    assert decoded["records"] == [{"id": "1", "name": vendor_doc["name"]}]


# ---- project -----------------------------------------------------------------------------

CONTACT = {
    "id": "7",
    "properties": {"email": "a@b.example", "firstname": "Zoë", "empty": "", "zero": 0,
                   "none": None, "nested": {"deep": {"leaf": "𠮷"}, "list": [1, {"x": 2}]}},
    "archived": False,
    "createdAt": "2020-01-01T00:00:00.000Z",
}


def test_project_without_fields_keeps_the_record() -> None:
    assert spool.project(CONTACT, None) == CONTACT
    assert spool.project(CONTACT, []) == CONTACT


def test_project_dotted_fields() -> None:
    before = copy.deepcopy(CONTACT)
    out = spool.project(CONTACT, ["id", "properties.email", "properties.nested.deep.leaf",
                                  "properties.firstname", "archived"])
    assert out == {"id": "7", "archived": False,
                   "properties": {"email": "a@b.example", "firstname": "Zoë",
                                  "nested": {"deep": {"leaf": "𠮷"}}}}
    assert before == CONTACT  # the vendor record is not mutated
    assert spool.dumps(out).encode().count("𠮷".encode()) == 1


def test_project_keeps_falsy_values_and_whole_subtrees() -> None:
    out = spool.project(CONTACT, ["properties.empty", "properties.zero", "properties.none",
                                  "properties.nested.list"])
    assert out == {"properties": {"empty": "", "zero": 0, "none": None,
                                  "nested": {"list": [1, {"x": 2}]}}}
    assert spool.project(CONTACT, ["properties"]) == {"properties": CONTACT["properties"]}


def test_project_skips_missing_paths_without_empty_parents() -> None:
    assert spool.project(CONTACT, ["nope", "properties.nope", "properties.nested.nope.x"]) == {}
    # a path through a non-object (string, list, bool) is missing, not an error
    assert spool.project(CONTACT, ["id.length", "properties.nested.list.0", "archived.x"]) == {}
    assert spool.project(CONTACT, ["id", "properties.nope"]) == {"id": "7"}


def test_project_overlapping_fields() -> None:
    whole = spool.project(CONTACT, ["properties.nested", "properties.nested.deep"])
    assert whole == {"properties": {"nested": CONTACT["properties"]["nested"]}}
    before = copy.deepcopy(CONTACT)
    spool.project(CONTACT, ["properties", "properties.email", "properties.nested.deep.leaf"])
    assert before == CONTACT
