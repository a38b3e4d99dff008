import pytest
import torch

from unrender.geometry import VoxelGrid, boxes_from_components, connected_components, warp_volume
from unrender.methods.dynamic.background import (
    centre_surround,
    moving_voxels,
    points_in_boxes,
    reliably_seen,
    temporal_background,
)

GRID = VoxelGrid((-8.0, -2.0, 0.0), (8.0, 0.0, 16.0), (32, 4, 32))  # 0.5 m voxels


def box_volume(box: torch.Tensor) -> torch.Tensor:
    pts = GRID.centers(dtype=torch.float64).reshape(-1, 3)
    return points_in_boxes(pts, box[None])[0].reshape(GRID.shape).float()


def one_moving_box_sequence(T: int = 9):
    """A parked car, a wall and a car driving 1 m per frame along z; each frame's occupancy in the anchor
    frame (the middle one), every voxel seen."""
    wall = torch.tensor([7.0, -1.0, 8.0, 1.0, 2.0, 16.0, 0.0], dtype=torch.float64)
    parked = torch.tensor([-5.0, -0.75, 4.0, 4.0, 1.5, 2.0, -1.5707963], dtype=torch.float64)
    static = torch.maximum(box_volume(wall), box_volume(parked))
    movers = [torch.tensor([0.0, -0.75, 2.0 + t, 4.0, 1.5, 2.0, -1.5707963], dtype=torch.float64) for t in range(T)]
    vols = torch.stack([torch.maximum(static, box_volume(b)) for b in movers])[:, None]
    return vols, static, movers


def test_median_background_of_a_sequence_with_one_moving_box_excludes_the_box():
    vols, static, movers = one_moving_box_sequence()
    seen = torch.ones_like(vols, dtype=torch.bool)
    bg = temporal_background(vols, seen)
    assert torch.equal(bg["background"][0], static)  # the moving car is in no voxel for half the frames
    assert (bg["count"] == len(vols)).all()
    mean = temporal_background(vols, seen, statistic="mean")["background"][0]
    assert (mean[static == 0].max() > 0) and (mean[static == 0].max() < 0.5)  # the mean keeps a smear
    # what differs from the background is exactly the moving car, frame by frame
    moving = moving_voxels(vols, seen, bg["background"], threshold=0.5, margin=0)
    for t, b in enumerate(movers):
        want = (box_volume(b) > 0) & (static == 0)
        assert torch.equal(moving[t, 0], want)
        (got,) = boxes_from_components(connected_components(moving[t, 0]), GRID)
        assert torch.allclose(got[:6].float(), b[:6].float(), atol=0.3)
    # a frame that did not see a voxel does not vote for it
    seen[3:] = False
    only = temporal_background(vols, seen)
    assert (only["count"] == 3).all()
    torch.testing.assert_close(only["background"], vols[:3].median(0).values)


def test_reliably_seen_drops_the_border_of_what_was_seen():
    seen = torch.zeros(2, 1, 6, 6, 6, dtype=torch.bool)
    seen[:, :, 1:5, 1:5, 1:5] = True
    got = reliably_seen(seen, 1)
    assert got.sum() == 2 * 8 and got[0, 0, 2:4, 2:4, 2:4].all()
    assert torch.equal(reliably_seen(seen, 0), seen)


def test_centre_surround_prefers_a_whole_object_to_a_piece_of_wall():
    vols, static, movers = one_moving_box_sequence()
    occ = vols[4, 0]
    car = movers[4].float()
    wall_piece = torch.tensor([7.0, -1.0, 8.0, 1.0, 2.0, 4.0, 0.0])
    off = car.clone()
    off[0] += 3.0  # beside the car: empty
    s = centre_surround(occ, GRID, torch.stack([car, wall_piece, off]), shell=1.0)
    assert s[0] > 0.95 and s[1] < 0.9 and s[2].abs() < 0.05  # the wall goes on around its piece
    assert centre_surround(occ, GRID, torch.zeros(0, 7)).shape == (0,)


def test_stabilising_with_the_ego_motion_makes_static_voxels_agree():
    # a static scene seen by an ego moving 1 m along z per frame: each frame's memory is in its own frame;
    # warped into the anchor frame (frame 2) with the known motion, every frame agrees with the anchor's
    _, static, _ = one_moving_box_sequence()
    T, anchor = 5, 2
    world_from_frame = torch.eye(4).repeat(T, 1, 1)
    world_from_frame[:, 2, 3] = torch.arange(T, dtype=torch.float32)
    frames = warp_volume(static[None], GRID, torch.linalg.inv(world_from_frame))  # (T, 1, Z, Y, X)
    anchor_from_frame = torch.linalg.inv(world_from_frame[anchor]) @ world_from_frame
    stab = warp_volume(frames, GRID, anchor_from_frame)
    inner = (slice(None), slice(None), slice(4, -4))  # along z, away from what left some frame's grid
    for t in range(T):
        torch.testing.assert_close(stab[t][inner], frames[anchor][inner], atol=1e-5, rtol=0)
    bg = temporal_background(stab, torch.ones_like(stab, dtype=torch.bool))["background"]
    torch.testing.assert_close(bg[inner], frames[anchor][inner], atol=1e-5, rtol=0)


def test_bad_inputs_are_named():
    vols = torch.zeros(3, 1, 2, 2, 2)
    with pytest.raises(ValueError, match="seen"):
        temporal_background(vols, torch.ones(3, 1, 2, 2, 2))
    with pytest.raises(ValueError, match="statistic"):
        temporal_background(vols, torch.ones_like(vols, dtype=torch.bool), statistic="mode")
