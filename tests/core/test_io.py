import json
import os

import numpy as np
import pytest

from reprolab.core.errors import DataError
from reprolab.core.io import append_jsonl, atomic_path, read_json, read_jsonl, write_json


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_and_is_world_readable(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert os.stat(target).st_mode & 0o044  # group/other read, like a normal open()


def test_json_round_trip_converts_numpy(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float32(0.5), "v": np.arange(3)})
    assert read_json(tmp_path / "a.json") == {"x": 0.5, "v": [0, 1, 2]}


def test_read_json_names_the_broken_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        read_json(bad)


def test_jsonl_append_and_read(tmp_path):
    path = tmp_path / "h.jsonl"
    append_jsonl(path, {"epoch": 1})
    append_jsonl(path, {"epoch": 2})
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2]
    assert json.loads(path.read_text().splitlines()[0]) == {"epoch": 1}
