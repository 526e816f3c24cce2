import numpy as np
import pytest

from reprolab.medical.anatomy import BACKGROUND, GREY_MATTER, OTHER, WHITE_MATTER, mni152, tissue_labels


@pytest.fixture(scope="module")
def anatomy():
    return mni152(2)


def test_mni152_volumes_share_one_grid_in_unit_range(anatomy):
    assert anatomy.t1.shape == anatomy.gm.shape == anatomy.wm.shape == (99, 117, 95)
    assert anatomy.voxel_mm == pytest.approx((2.0, 2.0, 2.0))
    for vol in (anatomy.t1, anatomy.gm, anatomy.wm):
        assert vol.dtype == np.float32 and vol.min() >= 0 and vol.max() <= 1


def test_tissue_labels_put_white_matter_inside_grey_matter(anatomy):
    labels = tissue_labels(anatomy)
    counts = np.bincount(labels.ravel(), minlength=4)
    assert all(counts[k] > 1000 for k in (BACKGROUND, GREY_MATTER, WHITE_MATTER, OTHER))
    # White matter is brighter than grey matter on T1.
    assert anatomy.t1[labels == WHITE_MATTER].mean() > anatomy.t1[labels == GREY_MATTER].mean()
    # Corners of the box are background.
    assert labels[0, 0, 0] == labels[-1, -1, -1] == BACKGROUND


def test_unknown_resolution_is_refused():
    with pytest.raises(ValueError, match="resolution_mm"):
        mni152(3)
