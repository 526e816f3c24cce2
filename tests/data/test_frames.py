from pathlib import Path

import numpy as np
import pytest
import spikingjelly.datasets as sjds

from reprolab.data.events import EventSet, concatenate
from reprolab.data.frames import events_to_frames
from reprolab.data.nmnist import read_archive

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def events() -> EventSet:
    return read_archive(REPO / "resources/demo/nmnist-small/test.zip", "test").subset(30)


@pytest.mark.parametrize("binning, split_by", [("count", "number"), ("time", "time")])
@pytest.mark.parametrize("T", [1, 3, 10])
def test_frames_equal_spikingjelly(events, binning, split_by, T):
    frames = events_to_frames(events, T, binning)
    for i in range(len(events)):
        rec = {k: v.astype(np.int64) for k, v in events.recording(i).items()}
        ref = sjds.integrate_events_by_fixed_frames_number(rec, split_by, T, 34, 34)
        np.testing.assert_array_equal(frames[i], ref)


@pytest.mark.parametrize("binning", ["count", "time"])
def test_every_event_lands_in_exactly_one_frame(events, binning):
    frames = events_to_frames(events, 7, binning, chunk=4)
    np.testing.assert_array_equal(frames.reshape(len(events), -1).sum(1), events.counts)


def test_fewer_events_than_bins_go_to_the_last_frame():
    ev = concatenate(
        [{"x": np.array([1, 2]), "y": np.array([0, 0]), "p": np.array([0, 1]), "t": np.array([5, 9])}],
        [0],
        ["a"],
        (4, 4, 2),
    )
    frames = events_to_frames(ev, 5, "count")
    assert frames[0, :4].sum() == 0 and frames[0, 4].sum() == 2


def test_event_file_round_trip(tmp_path, events):
    events.save(tmp_path / "e.npz")
    back = EventSet.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.t, events.t)
    np.testing.assert_array_equal(back.names, events.names)
    assert back.sensor_size == events.sensor_size
