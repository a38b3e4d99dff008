import math

import kornia.metrics as KM
import pytest
import torch
from _util import rand_rot

from unrender.metrics import (
    DepthMetrics,
    average_precision,
    confusion_matrix,
    depth_metrics,
    detection_ap,
    eigen_crop_mask,
    mean_iou,
    mpjpe,
    n_mpjpe,
    p_mpjpe,
    psnr,
    ssim,
    voxel_iou,
)


def img(vals):
    return torch.tensor(vals, dtype=torch.float64).reshape(1, 1, 1, -1)


def test_depth_metrics_hand_computed():
    m = depth_metrics(img([1.0, 2.0, 4.0, 9.0, 3.0]), img([2.0, 2.0, 2.0, 0.0, 100.0]), max_depth=80)
    # the last two pixels are invalid (gt = 0, gt > max_depth)
    assert m["abs_rel"].item() == pytest.approx(0.5)
    assert m["sq_rel"].item() == pytest.approx(2.5 / 3)  # divided by gt, as in Monodepth2
    assert m["rmse"].item() == pytest.approx(math.sqrt(5 / 3))
    assert m["rmse_log"].item() == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    assert m["log10"].item() == pytest.approx(2 * math.log10(2) / 3)
    for k in ("a1", "a2", "a3"):
        assert m[k].item() == pytest.approx(1 / 3)


def test_depth_metrics_median_scaling_and_clamp():
    m = depth_metrics(img([1.0, 2.0, 4.0]), img([2.0, 4.0, 8.0]), median_scaling=True)
    assert m["scale"].item() == pytest.approx(2.0)
    assert m["abs_rel"].item() == pytest.approx(0.0)
    # predictions are clamped to [min_depth, max_depth]: 200 m counts as 80 m
    m = depth_metrics(img([200.0]), img([40.0]), max_depth=80)
    assert m["abs_rel"].item() == pytest.approx(1.0)


def test_depth_accumulator_and_crop():
    acc = DepthMetrics(median_scaling=True)
    gt = torch.full((2, 1, 8, 8), 10.0)
    acc.update(torch.cat([gt[:1] * 0.5, gt[1:] * 0.25]), gt)
    acc.update(torch.ones(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))  # no valid pixel: skipped
    out = acc.compute()
    assert out["num_images"] == 2
    # ratios 2 and 4: numpy-style median 3, std of (2/3, 4/3) = 1/3
    assert out["scale_median"] == pytest.approx(3.0)
    assert out["scale_std"] == pytest.approx(1 / 3)
    assert out["abs_rel"] == pytest.approx(0.0)
    mask = eigen_crop_mask(375, 1242)
    assert not mask[:153].any() and mask[153:371, 44:1197].all() and not mask[371:].any()
    with pytest.raises(ValueError, match=r"gt: expected shape \(\.\.\., B, 1, H, W\)"):
        depth_metrics(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 5))


def test_depth_abs_rel_shares_by_group():
    # errors |gt - pred| / gt: 0.5, 0, 1, (invalid), 0.25 over 4 valid pixels -> abs_rel 0.4375
    pred, gt = img([1.0, 2.0, 4.0, 9.0, 5.0]), img([2.0, 2.0, 2.0, 0.0, 4.0])
    groups = torch.tensor([0, 0, 1, 1, 2]).reshape(1, 1, 1, -1)
    m = depth_metrics(pred, gt, groups=groups, num_groups=3)
    torch.testing.assert_close(m["abs_rel_share"], torch.tensor([[0.125, 0.25, 0.0625]], dtype=torch.float64))
    assert m["abs_rel_share"].sum().item() == pytest.approx(m["abs_rel"].item())
    acc = DepthMetrics(num_groups=3)
    acc.update(pred, gt, groups)
    acc.update(pred * 2, gt, groups)  # second image: errors 0, 1, 3, 1.5 -> shares 0.25, 0.75, 0.375
    out = acc.compute()
    assert [out[f"abs_rel_share_{g}"] for g in range(3)] == pytest.approx([0.1875, 0.5, 0.21875])
    assert sum(out[f"abs_rel_share_{g}"] for g in range(3)) == pytest.approx(out["abs_rel"])
    with pytest.raises(ValueError, match=r"groups: expected integer labels in \[0, 2\)"):
        depth_metrics(pred, gt, groups=groups, num_groups=2)
    with pytest.raises(ValueError, match="groups: expected the shape of gt"):
        depth_metrics(pred, gt, groups=groups[..., :2], num_groups=3)


def test_psnr_ssim():
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    mse = ((x - y) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(psnr(y, x), 10 * torch.log10(1 / mse))
    assert psnr(x, x).max().item() == pytest.approx(100.0)
    mask = torch.rand(3, 32, 32) > 0.7
    mask[2] = False  # an image with no pixels in the mask
    part = psnr(y, x, mask=mask)
    for b in range(2):
        mse_b = ((x[b] - y[b]) ** 2)[:, mask[b]].mean()
        torch.testing.assert_close(part[b], 10 * torch.log10(1 / mse_b))
    assert torch.isnan(part[2])
    ref = KM.ssim(y, x, 11, padding="valid").flatten(1).mean(1)
    torch.testing.assert_close(ssim(y, x), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[..., :8, :8], x[..., :8, :8])


def test_voxel_iou_and_miou():
    p = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0]])
    g = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0]])
    torch.testing.assert_close(voxel_iou(p, g), torch.tensor([1 / 3, 1.0]))
    torch.testing.assert_close(voxel_iou(p, g, mask=torch.tensor([True, True, True, False])), torch.tensor([0.5, 1.0]))
    cm = confusion_matrix(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, -1]), 3)
    per, m = mean_iou(cm)
    torch.testing.assert_close(per, torch.tensor([0.5, 0.5, 1.0]))
    assert m == pytest.approx(2 / 3)


def box(x, z=10.0):
    return [x, 1.0, z, 4.0, 1.5, 1.8, 0.0]


def test_ap_hand_computed():
    gt = [torch.tensor([box(0.0), box(10.0)]), torch.tensor([box(-5.0)])]
    preds = [torch.tensor([box(0.0), box(30.0)]), torch.tensor([box(-5.0), box(40.0)])]
    scores = [torch.tensor([0.9, 0.8]), torch.tensor([0.7, 0.6])]
    # ranking TP, FP, TP, FP with 3 gt: recall 1/3 at precision 1, then 2/3 at 2/3
    ap = average_precision(preds, scores, gt, iou_thresholds=(0.5,))
    assert ap[0.5] == pytest.approx((13 * 1.0 + 13 * 2 / 3) / 40)
    # a duplicate of a matched detection is a false positive; a perfect set scores 1
    assert average_precision(gt, [torch.ones(2), torch.ones(1)], gt)[0.5] == pytest.approx(1.0)
    dup = [torch.tensor([box(0.0), box(0.0)])]
    ap = average_precision(dup, [torch.tensor([0.9, 0.8])], [torch.tensor([box(0.0)])], iou_thresholds=(0.5,))
    assert ap[0.5] == pytest.approx(1.0)  # precision 1 at recall 1 comes first
    ap = average_precision(
        dup, [torch.tensor([0.9, 0.8])], [torch.tensor([box(0.0), box(20.0)])], iou_thresholds=(0.5,)
    )
    assert ap[0.5] == pytest.approx(20 / 40)  # recall 1/2 at precision 1, never more
    # a shifted box: IoU 1/3 in BEV (half overlap along x) is a hit at 0.25 and a miss at 0.5
    shifted = [torch.tensor([box(2.0)])]
    ap = average_precision(shifted, [torch.tensor([1.0])], [torch.tensor([box(0.0)])], iou_type="bev")
    assert ap == {0.25: 1.0, 0.5: 0.0}
    assert math.isnan(average_precision(shifted, [torch.tensor([1.0])], [torch.zeros(0, 7)])[0.5])


def test_detection_ap_per_class():
    gt = [torch.tensor([box(0.0), box(10.0)])]
    labels = [torch.tensor([0, 1])]
    out = detection_ap(gt, [torch.tensor([0.9, 0.8])], [torch.tensor([0, 0])], gt, labels, ["car", "ped"],
                       iou_thresholds=(0.5,))  # fmt: skip
    # class 0: one TP and one FP (the other box is a pedestrian): AP 1; class 1: nothing found
    assert out == {"car/AP3d@0.5": 1.0, "ped/AP3d@0.5": 0.0, "mAP3d@0.5": 0.5}


def test_pose_metrics():
    gt = torch.randn(4, 17, 3, dtype=torch.float64)
    R = rand_rot((4,))
    moved = 1.7 * gt @ R.transpose(-1, -2) + torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    assert (p_mpjpe(moved, gt) < 1e-9).all()
    assert (mpjpe(gt + 5.0, gt) < 1e-12).all()  # root-relative: a translation costs nothing
    assert (n_mpjpe(0.3 * gt, gt) < 1e-9).all()
    noisy = gt + 0.1 * torch.randn_like(gt)
    assert (p_mpjpe(noisy, gt) <= mpjpe(noisy, gt, root=None) + 1e-12).all()
    # reflections are not allowed in the alignment
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert (p_mpjpe(mirrored, gt) > 1e-3).all()
    # hand-computed: one joint off by (3, 4, 0) of two
    a, b = torch.zeros(2, 3), torch.tensor([[0.0, 0, 0], [3, 4, 0]])
    assert mpjpe(b, a).item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match=r"gt: expected shape \(\.\.\., J, 3\) where J=17"):
        mpjpe(gt, gt[:, :16])
