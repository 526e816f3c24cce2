import zipfile
from pathlib import Path

import numpy as np
import pytest
import tonic

from reprolab.core.errors import DataError
from reprolab.data.nmnist import SENSOR_SIZE, decode_atis, read_archive

REPO = Path(__file__).resolve().parents[2]
TEST_ZIP = REPO / "resources/demo/nmnist-small/test.zip"


@pytest.fixture(scope="module")
def test_events():
    return read_archive(TEST_ZIP, "test")


def test_reader_equals_tonic_on_every_demo_test_recording(tmp_path, test_events):
    with zipfile.ZipFile(TEST_ZIP) as zf:
        for i, name in enumerate(test_events.names):
            path = tmp_path / "rec.bin"
            path.write_bytes(zf.read(str(name)))
            ref = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
            ours = test_events.recording(i)
            order = np.argsort(ref["t"], kind="stable")
            for key in "xytp":
                np.testing.assert_array_equal(ours[key], ref[key][order], err_msg=f"{name} field {key}")


def test_labels_come_from_the_digit_folder(test_events):
    assert len(test_events) == 100
    for name, label in zip(test_events.names, test_events.labels):
        assert int(str(name).split("/")[1]) == label
    assert set(test_events.labels.tolist()) == set(range(10))
    assert test_events.sensor_size == SENSOR_SIZE


def test_overflow_events_shift_later_timestamps():
    # two events, an overflow marker (y == 240) between them
    raw = bytes([1, 2, 0x80, 0, 10, 0, 240, 0, 0, 0, 3, 4, 0x00, 0, 20])
    ev = decode_atis(raw)
    np.testing.assert_array_equal(ev["x"], [1, 3])
    np.testing.assert_array_equal(ev["p"], [1, 0])
    np.testing.assert_array_equal(ev["t"], [10, 20 + 2**13])


def test_truncated_recording_is_reported():
    with pytest.raises(DataError, match="not a multiple of 5"):
        decode_atis(bytes(7), name="x.bin")


def test_corrupted_archive_gives_a_clear_error(tmp_path):
    broken = tmp_path / "train.zip"
    data = TEST_ZIP.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_archive(broken, "test")
