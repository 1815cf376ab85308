"""On-disk spool: bounded, append-only, survives restarts, counts what it drops."""

from __future__ import annotations

import json

from lighthouse.spool import Spool


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"time": f"2026-01-01T00:00:{i % 60:02d}+00:00", "subscription_id": str(i),
             "status": "success", "n": i} for i in range(start, start + n)]


def test_append_rotate_read_remove(tmp_path):
    sp = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=2_000)
    assert sp.append(rows(100)) == 100
    segs = sp.segments()
    assert len(segs) > 1  # rotated at segment_bytes
    got = [r["n"] for s in segs for r in sp.read(s)]
    assert got == list(range(100))  # order kept, oldest segment first
    assert sp.rows == 100 and sp.size_bytes == sum(p.stat().st_size for p in segs)
    for s in segs:
        sp.remove(s)
    assert not sp and sp.rows == 0 and list(tmp_path.iterdir()) == []


def test_bound_is_enforced_and_loss_counted(tmp_path):
    line = len(json.dumps(rows(1)[0], separators=(",", ":"))) + 1
    sp = Spool(tmp_path, max_bytes=line * 10 + 5, segment_bytes=10_000)
    assert sp.append(rows(6)) == 6
    assert sp.append(rows(6, 6)) == 4  # only 4 more fit
    assert sp.lost == 2
    assert sp.size_bytes <= sp.max_bytes
    assert sp.append(rows(3, 12)) == 0 and sp.lost == 5


def test_restart_finds_segments_and_skips_a_torn_line(tmp_path):
    sp = Spool(tmp_path, max_bytes=1_000_000)
    sp.append(rows(5))
    seg = sp.segments()[0]
    with seg.open("ab") as f:
        f.write(b'{"time": "2026-01-01T00:00:0')  # crash mid-write
    again = Spool(tmp_path, max_bytes=1_000_000)
    assert again.rows == 6  # lines on disk, torn one included until read
    assert [r["n"] for r in again.read(again.segments()[0])] == list(range(5))
    assert again.corrupt == 1
    again.append(rows(1, 5))  # a new process writes a new segment, never the torn one
    assert len(again.segments()) == 2
