import math

import numpy as np
import pytest
import torch

from unrender.geometry import depth_to_points, invert_rigid, look_at, make_intrinsics, transform_points
from unrender.world import CLASSES, Material, Primitive, Scene, SceneObject, render
from unrender.world.primitives import KINDS, inside, intersect
from unrender.world.sample import SynthConfig, make_sample
from unrender.world.truth import labels_at, occupancy, scene_flow

F64 = torch.float64


# --- an independent reference: signed distance functions + sphere tracing in float64 ----------------
def sdf_local(kind, p, size):
    h = size / 2
    if kind == "box":
        q = p.abs() - h
        return q.clamp(min=0).norm(dim=-1) + q.amax(-1).clamp(max=0)
    if kind == "ellipsoid":  # exact for spheres only (the tests use spheres here)
        return p.norm(dim=-1) - h[0]
    if kind == "cylinder":
        d = torch.stack([p[..., [0, 2]].norm(dim=-1) - h[0], p[..., 1].abs() - h[1]], -1)
        return d.amax(-1).clamp(max=0) + d.clamp(min=0).norm(dim=-1)
    if kind == "capsule":
        a = h[1] - h[0]
        q = p.clone()
        q[..., 1] = p[..., 1] - p[..., 1].clamp(-a, a)
        return q.norm(dim=-1) - h[0]
    if kind == "plane":
        return -p[..., 1]  # the ground, seen from above
    raise ValueError(kind)


def scene_sdf(flat, p):
    best = torch.full(p.shape[:-1], math.inf, dtype=p.dtype)
    for i in range(len(flat.kind)):
        T = flat.part_from_world[i]
        local = p @ T[:3, :3].T + T[:3, 3]
        best = torch.minimum(best, sdf_local(KINDS[int(flat.kind[i])], local, flat.size[i]))
    return best


def sphere_trace(flat, o, d, iters=3000, far=60.0):
    t = torch.zeros(o.shape[0], dtype=F64)
    done = torch.zeros_like(t, dtype=torch.bool)
    for _ in range(iters):
        s = scene_sdf(flat, o + t[:, None] * d)
        done |= s.abs() < 1e-9
        t = torch.where(done, t, t + s)
        if bool((done | (t > far)).all()):
            break
    return torch.where(done, t, torch.full_like(t, math.inf)), done


def make_scene():
    return Scene(
        [
            SceneObject("ground", "floor", [Primitive("plane", (0, 0, 0))]),
            SceneObject("ball", "object", [Primitive("ellipsoid", (1.0, 1.0, 1.0))], position=(0.0, -0.5, 0.0)),
            SceneObject(
                "crate", "box", [Primitive("box", (0.8, 0.6, 0.9), rotation=(0.1, 0.6, -0.2))], (1.3, -0.5, 0.4)
            ),
            SceneObject(
                "can", "cup", [Primitive("cylinder", (0.5, 1.2, 0.5), rotation=(0.3, 0, 0.2))], (-1.2, -0.7, 0.2)
            ),
            SceneObject(
                "pill", "person", [Primitive("capsule", (0.4, 1.6, 0.4), rotation=(0, 0, 0.5))], (0.3, -0.9, 1.4)
            ),
        ]
    )


CAM = dict(
    K=make_intrinsics(60.0, 60.0, 31.5, 31.5, dtype=F64)[None],
    T=look_at(torch.tensor([[0.4, -2.2, -4.0]], dtype=F64), torch.tensor([0.0, -0.5, 0.5], dtype=F64)),
)


def test_rendered_depth_matches_sphere_traced_distances():
    scene = make_scene()
    out = render(scene, CAM["K"].float(), CAM["T"].float(), 64, 64, shadows=False)
    from unrender.geometry import camera_rays

    # the renderer's own float32 rays, traced in float64: this checks the intersections, not ray set-up
    o, d = camera_rays(CAM["K"].float(), CAM["T"].float(), 64, 64)
    o, d = o.double(), d.double()
    d = d / d.norm(dim=-1, keepdim=True)
    t_ref, ok = sphere_trace(scene.flatten(), o.reshape(-1, 3), d.reshape(-1, 3))
    dist = out["distance"].reshape(-1).double()
    hit = out["instance"].reshape(-1) > 0
    # sphere tracing stops within 1e-9 of a surface, which at grazing incidence can be well before the hit
    cos = (out["normals"].reshape(3, -1).T.double() * d.reshape(-1, 3)).sum(-1).abs()
    both = ok & hit & (cos > 0.05)
    assert both.sum() > 2000
    err = (dist[both] - t_ref[both]).abs()
    assert err.max() < 1e-4, err.max()
    # coverage agrees: the tracer only misses ground hits beyond its 60 m range
    assert not (ok & ~hit).any() and (dist[hit & ~ok] > 60).all()
    # z-depth is distance times the cosine to the optical axis
    z = transform_points(CAM["T"][0], (o.reshape(-1, 3) + t_ref[:, None] * d.reshape(-1, 3))[both])[:, 2]
    assert (out["depth"].reshape(-1).double()[both] - z).abs().max() < 1e-4


def test_unprojected_depth_lands_on_surfaces():
    scene = make_scene()
    out = render(scene, CAM["K"].float(), CAM["T"].float(), 64, 64)
    pts = depth_to_points(out["depth"][0].double(), CAM["K"][0]).reshape(-1, 3)
    world = transform_points(invert_rigid(CAM["T"][0]), pts)
    hit = out["depth"].reshape(-1) > 0
    assert scene_sdf(scene.flatten(), world[hit]).abs().max() < 1e-4


def test_ellipsoid_hits_satisfy_the_implicit_equation():
    size = torch.tensor([[0.6, 1.4, 1.0]], dtype=F64)
    o = torch.tensor([[[0.1, -3.0, 0.2], [2.0, 0.1, -0.1], [0.0, 0.0, -4.0]]], dtype=F64)
    d = torch.tensor([[[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.05, 0.02, 1.0]]], dtype=F64)
    d = d / d.norm(dim=-1, keepdim=True)
    t = intersect("ellipsoid", o, d, size)
    p = o + t[..., None] * d
    torch.testing.assert_close(((p / (size / 2)) ** 2).sum(-1), torch.ones(1, 3, dtype=F64))


@pytest.mark.parametrize("kind", KINDS)
def test_inside_agrees_with_sdf_sign(kind):
    g = torch.Generator().manual_seed(3)
    size = torch.tensor([[0.8, 1.6, 0.8]], dtype=F64) if kind != "plane" else torch.zeros(1, 3, dtype=F64)
    if kind == "ellipsoid":
        size = torch.tensor([[1.0, 1.0, 1.0]], dtype=F64)
    p = (torch.rand(1, 20000, 3, generator=g, dtype=F64) - 0.5) * 2.4
    ins = inside(kind, p, size)
    sd = sdf_local(kind, p[0], size[0])
    if kind == "plane":
        sd = p[0, :, 1] * -1  # below the ground (y > 0) is inside
    assert torch.equal(ins[0], sd <= 0)
    assert 0.02 < ins.float().mean() < 0.98


def test_occupancy_matches_point_in_primitive():
    from unrender.geometry import VoxelGrid

    scene = make_scene()
    grid = VoxelGrid((-2.0, -1.8, -1.0), (2.0, 0.2, 2.5), (20, 10, 18))
    occ, sem = occupancy(scene, grid)
    sd = scene_sdf(scene.flatten(), grid.centers(dtype=F64).reshape(-1, 3)).reshape(grid.shape)
    # the ground counts as the half-space below it; the sdf says the same with its sign
    assert torch.equal(occ[0].bool(), sd <= 0)
    assert sem[occ[0].bool()].min() > 0
    assert (sem == CLASSES.index("object")).any() and (sem == CLASSES.index("floor")).any()
    # a grid in another frame sees the same world
    shift = torch.eye(4, dtype=F64)
    shift[0, 3] = 0.2  # grid frame = world moved 0.2 m along x: voxel centres sit 0.2 m lower in x
    occ2, _ = occupancy(scene, grid, grid_from_world=shift)
    sd2 = scene_sdf(scene.flatten(), grid.centers(dtype=F64).reshape(-1, 3) - torch.tensor([0.2, 0, 0], dtype=F64))
    assert torch.equal(occ2[0].bool().reshape(-1), sd2 <= 0)


def test_ground_truth_flow_is_each_objects_rigid_motion():
    from unrender.world.generators import streets

    lay = streets(np.random.default_rng(3), views=2, H=8, W=8)
    # points inside every object: a cloud over the street, keep those an object holds at t0
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(40000, 3, generator=g, dtype=F64) * torch.tensor([16.0, 2.5, 70.0], dtype=F64)
    pts -= torch.tensor([8.0, 2.5, 0.0], dtype=F64)
    t0, t1 = 2.0, 5.0
    flow, obj = scene_flow(lay.scene, pts, t0, t1)
    movers = [i for i, o in enumerate(lay.scene.objects, 1) if any(o.velocity) or o.yaw_rate]
    assert movers and any((obj == i).any() for i in movers)
    for i in obj.unique().tolist():
        sel = obj == i
        if i == 0:
            assert (flow[sel] == 0).all()  # free space does not move
            continue
        o = lay.scene.objects[i - 1]
        want = torch.tensor(o.velocity, dtype=F64) * (t1 - t0)  # the streets' objects do not turn
        torch.testing.assert_close(flow[sel], want.expand(int(sel.sum()), 3), atol=1e-9, rtol=0)
    # the matter is still inside the same object where the flow took it
    _, obj1 = labels_at(lay.scene, pts + flow, t=t1)
    inside0 = obj > 0
    assert (obj1[inside0] == obj[inside0]).float().mean() > 0.99  # (another object may cover it at t1)
    # a turning object: the flow is its rotation about its moving centre plus the translation
    car = SceneObject("car", "car", [Primitive("box", (4.0, 1.0, 2.0))], (1.0, 0.0, 3.0), 0.2, (0.3, 0.0, 0.0), 0.1)
    p = torch.tensor([[2.5, 0.2, 3.5]], dtype=F64)
    flow, obj = scene_flow(Scene([car]), p, 0.0, 2.0)
    R = lambda yaw: torch.tensor(  # noqa: E731  (yaw about y, as world_from_object)
        [[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]], dtype=F64
    )
    local = R(0.2).T @ (p[0] - torch.tensor([1.0, 0.0, 3.0], dtype=F64))
    want = R(0.4) @ local + torch.tensor([1.6, 0.0, 3.0], dtype=F64)
    assert obj.tolist() == [1]
    torch.testing.assert_close(p[0] + flow[0], want)
    # an accelerating object: the flow is its displacement v (t1 - t0) + a (t1^2 - t0^2) / 2; JSON keeps it
    car = SceneObject("car", "car", [Primitive("box", (4.0, 1.0, 2.0))], (1.0, 0.0, 3.0), 0.0, (0.0, 0.0, 1.0),
                      acceleration=(0.0, 0.0, 0.1))  # fmt: skip
    assert car.moves and SceneObject("c", "car", car.parts, acceleration=(0.0, 0.0, 0.1)).moves
    flow, _ = scene_flow(Scene([car]), torch.tensor([[1.0, -0.2, 3.0 + 1.0 * 2 + 0.1 * 2]], dtype=F64), 2.0, 5.0)
    torch.testing.assert_close(flow[0], torch.tensor([0.0, 0.0, 3.0 + 0.1 * (25 - 4) / 2], dtype=F64))
    assert Scene.from_json(Scene([car]).to_json()).objects[0].acceleration == (0.0, 0.0, 0.1)


def test_render_is_deterministic_and_json_round_trips():
    scene = make_scene()
    scene.objects[1].parts[0].material = Material((0.9, 0.1, 0.1), "noise", (0.1, 0.1, 0.9), 0.2, seed=5)
    a = render(scene, CAM["K"].float(), CAM["T"].float(), 32, 32)
    b = render(Scene.from_json(scene.to_json()), CAM["K"].float(), CAM["T"].float(), 32, 32)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ValueError, match="malformed scene"):
        Scene.from_json('{"objects": [{"name": 1}]}')
    with pytest.raises(ValueError, match="kind"):
        Primitive("torus", (1, 1, 1))
    with pytest.raises(ValueError, match="unknown class"):
        SceneObject("x", "unicorn", [])


@pytest.mark.parametrize("kind", ["rooms", "streets", "objects", "people"])
def test_samples_boxes_enclose_masks_and_repeat(kind):
    cfg = SynthConfig(kind=kind, views=2, height=64, width=96 if kind == "streets" else 64, shadows=False)
    s = make_sample(cfg, 3)
    again = make_sample(cfg, 3)
    for k in ("rgb", "depth", "instance", "boxes_world"):
        assert np.array_equal(s[k], again[k]), k
    vis = s["mask_pixels"] > 0
    assert vis.any()
    m, b = s["mask_boxes"][vis], s["boxes_2d"][vis]
    assert s["boxes_2d_valid"][vis].all()
    tol = 0.51
    assert (m[:, 0] >= b[:, 0] - tol).all() and (m[:, 1] >= b[:, 1] - tol).all()
    assert (m[:, 2] <= b[:, 2] + tol).all() and (m[:, 3] <= b[:, 3] + tol).all()
    if kind == "rooms":
        names = [CLASSES[c] for c in s["box_classes"]]
        assert "cup" in names and "chair" in names and "table" in names
    if kind == "people":
        assert s["joints_2d"].shape == (2, 17, 2) and s["joints_cam"][..., 2].min() > 0
    if kind == "streets":
        torch.testing.assert_close(torch.from_numpy(s["camera_height"]), torch.full((2,), 1.65, dtype=F64))
        # the road plane in the camera frame passes 1.65 m below the camera
        assert np.allclose(s["road_plane_cam"][:, 3], 1.65, atol=0.02)


def streets_layout(seed: int):
    from unrender.world.generators import streets

    return streets(np.random.default_rng(seed), views=24, H=8, W=24)


def test_street_ego_camera_drives_forward_about_a_metre_per_frame():
    for seed in range(3):
        layout = streets_layout(seed)
        centres = invert_rigid(layout.cam_from_world)[:, :3, 3]  # world: z along the street
        step = centres[1:] - centres[:-1]
        assert ((step[:, 2] > 0.8) & (step[:, 2] < 1.1)).all(), step[:, 2]
        assert step[:, :2].abs().max() < 1e-9
        # streets 1-5 drew each step independently (up to 0.2 m apart); a car's speed changes slowly
        assert (step[1:, 2] - step[:-1, 2]).abs().max() < 0.01


def test_street_ego_camera_turns_smoothly():
    """streets 1-4 drew pitch, yaw and roll independently per frame (up to 30 mrad between frames)."""
    from unrender.geometry import matrix_to_axis_angle

    for seed in range(6):
        layout = streets_layout(seed)
        R = layout.cam_from_world[:, :3, :3]
        rel = matrix_to_axis_angle(R[1:] @ R[:-1].transpose(-1, -2)).norm(dim=-1)
        assert rel.max() < 0.012, (seed, rel.max())
        assert rel.mean() > 0.001  # it does move


def test_street_ego_camera_never_drives_into_a_car_or_cyclist():
    """streets 1-2 put the ego camera in the lane of the parked cars and the oncoming traffic."""
    from unrender.geometry import box_corners
    from unrender.world.truth import object_boxes

    for seed in range(12):
        layout = streets_layout(seed)
        centres = invert_rigid(layout.cam_from_world)[:, :3, 3]
        for f, c in enumerate(centres):
            corners = box_corners(object_boxes(layout.scene, layout.times[f])["boxes"])  # (M, 8, 3)
            lo, hi = corners.amin(1) - 0.5, corners.amax(1) + 0.5
            inside = (c[0] > lo[:, 0]) & (c[0] < hi[:, 0]) & (c[2] > lo[:, 2]) & (c[2] < hi[:, 2])
            assert not inside.any(), (seed, f)


def test_rooms_have_cup_on_table_and_chair_under_desk():
    s = make_sample(SynthConfig(kind="rooms", views=1, height=16, width=16, occupancy=False), 0)
    scene = Scene.from_json(str(s["scene_json"]))
    names = [o.name for o in scene.objects]
    assert "chair_under_table" in names and any(n.startswith("cup") for n in names)
    table = next(o for o in scene.objects if o.name == "table0")
    cup = next(o for o in scene.objects if o.name.startswith("cup0"))
    tb, cb = table.box_at(), cup.box_at()
    # the cup stands on the table top: its bottom is the table's top
    assert abs((cb[1] + cb[4] / 2) - (tb[1] - tb[4] / 2)) < 1e-6
    chair = next(o for o in scene.objects if o.name == "chair_under_table").box_at()
    from unrender.geometry import box_iou_bev

    assert box_iou_bev(chair[None], tb[None]).item() > 0  # under it


def test_street_object_depth_follows_the_pinhole_height_rule():
    """depth = f H / h from the rendered instance of fully visible upright cars and pedestrians 8 m away or more."""
    checked, errors = 0, []
    for idx in range(3):
        cfg = SynthConfig(kind="streets", views=2, height=192, width=640, occupancy=False, shadows=False)
        s = make_sample(cfg, idx)
        scene = Scene.from_json(str(s["scene_json"]))
        for v in range(2):
            for m, (cls, iid) in enumerate(zip(s["box_classes"], s["box_instance"], strict=True)):
                if CLASSES[cls] not in ("car", "pedestrian"):
                    continue
                x1, y1, x2, y2 = s["mask_boxes"][v, m]
                if y2 - y1 < 20 or x1 < 0 or y1 < 0 or x2 > 639 or y2 > 191:
                    continue
                alone = render(Scene([scene.objects[iid - 1]]), torch.from_numpy(s["K"][v : v + 1]),
                               torch.from_numpy(s["cam_from_world"][v : v + 1]), 192, 640,
                               t=float(s["time"][v]), shadows=False)  # fmt: skip
                if s["mask_pixels"][v, m] < 0.98 * (alone["instance"] > 0).sum().item():
                    continue  # occluded
                D = s["K"][v, 1, 1] * s["boxes_world"][v, m, 4] / (y2 - y1)
                rendered = np.median(s["depth"][v, 0][s["instance"][v, 0] == iid])
                if rendered < 8.0:
                    # closer than ~8 m the 1.65 m camera sees a car's roof: its image height then
                    # spans the roof's depth too and f H / h drifts past 5 %, which is the prior's
                    # own error, not the renderer's
                    continue
                # the box height h is whole pixels: allow one pixel of it on top of 3 %
                errors.append(abs(D - rendered) / rendered - 1.0 / (y2 - y1))
                checked += 1
    assert checked >= 8
    assert max(errors) < 0.03, errors


def test_antialiasing_averages_rays_over_the_pixel_and_keeps_the_centre_ray_truth():
    from unrender.render import inverse_warp
    from unrender.world.generators import GENERATORS

    lay = GENERATORS["streets"](np.random.default_rng(3), views=3, H=32, W=96)
    K, T = lay.K, lay.cam_from_world
    one = render(lay.scene, K, T, 32, 96)
    aa = render(lay.scene, K, T, 32, 96, antialias=3)
    # everything but the colour is the pixel-centre ray's: the road's depth changes along every
    # row, so a sub-pixel shift of the centre ray would show
    for k in ("instance", "semantic"):
        assert torch.equal(aa[k], one[k]), k
    hit = one["depth"] > 0
    assert (aa["depth"][hit] / one["depth"][hit] - 1).abs().max() < 1e-4
    # colour: the mean of 9 rays; fine textures far away differ from the centre ray, the colour
    # stays in range, and the images agree on average
    assert aa["rgb"].min() >= 0 and aa["rgb"].max() <= 1
    assert (aa["rgb"] - one["rgb"]).abs().mean() < 0.03 and (aa["rgb"] - one["rgb"]).abs().max() > 0.1
    # what it is for: brightness constancy. Warping the neighbours into the middle frame with the
    # true depth and poses leaves a much smaller error once the frames are anti-aliased (one ray per
    # pixel aliases the facades' textures, and the aliasing changes as the camera moves)
    depth = one["depth"][1:2].float()
    errs = []
    for out in (one, aa):
        e = [(inverse_warp(out["rgb"][j : j + 1].float(), depth, K[1:2].float(),
                           (T[j] @ invert_rigid(T[1]))[None].float())[0] - out["rgb"][1:2]).abs().mean(1)
             for j in (0, 2)]  # fmt: skip
        errs.append(float(torch.stack(e).amin(0)[hit[1]].mean()))
    assert errs[1] < 0.75 * errs[0], errs
    with pytest.raises(ValueError, match="antialias"):
        render(lay.scene, K, T, 32, 96, antialias=2)
    with pytest.raises(ValueError, match="antialias"):
        SynthConfig(kind="streets", antialias=0)


def test_traffic_is_a_rig_of_three_cameras_over_time_with_its_variants():
    from unrender.world.generators import streets
    from unrender.world.generators.streets import street_scene
    from unrender.world.generators.traffic import RIG_YAWS, traffic

    lay = traffic(np.random.default_rng(5), views=4, H=8, W=12)
    assert len(lay.cam_from_world) == 12 and lay.times == [float(f) for f in range(4) for _ in RIG_YAWS]
    centres = -torch.einsum("nji,nj->ni", lay.cam_from_world[:, :3, :3], lay.cam_from_world[:, :3, 3])
    for f in range(4):  # the rig's cameras share a centre; the side ones look 60 degrees left and right
        torch.testing.assert_close(centres[3 * f + 1 : 3 * f + 3] - centres[3 * f], torch.zeros(2, 3, dtype=F64))
        fwd = lay.cam_from_world[3 * f : 3 * f + 3, 2, :3]  # each camera's optical axis in the world
        assert fwd[1, 0] < -0.8 and fwd[2, 0] > 0.8 and fwd[0, 2] > 0.99
    # the scene and the front camera are the streets generator's (same draws)
    ref = streets(np.random.default_rng(5), views=4, H=8, W=12)
    torch.testing.assert_close(lay.cam_from_world[::3], ref.cam_from_world)
    assert int(lay.extra["anchor"]) == 2 and lay.grid.contains(centres[6])
    street, _ = street_scene(np.random.default_rng(5), kind="traffic")
    one = traffic(np.random.default_rng(5), views=4, H=8, W=12, variant="one")
    assert sum(o.has_box and o.moves for o in one.scene.objects) == 1
    assert sum(o.has_box for o in one.scene.objects) == sum(o.has_box for o in street.objects)
    empty = traffic(np.random.default_rng(5), views=4, H=8, W=12, variant="empty")
    assert not any(o.has_box for o in empty.scene.objects) and len(empty.scene.objects) > 5


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mixed_traffic_moves_through_the_grid_without_collisions(seed):
    from unrender.geometry import box_iou_bev
    from unrender.world.generators.traffic import traffic

    T = 20
    lay = traffic(np.random.default_rng(seed), views=T, H=8, W=12)
    objs = [o for o in lay.scene.objects if o.has_box]
    movers = [o for o in objs if o.moves]
    assert movers
    anchor = int(lay.extra["anchor"])
    lo, hi = lay.grid.bounds_min[2], lay.grid.bounds_max[2]
    ego_z = [float(-(lay.cam_from_world[3 * t, :3, :3].T @ lay.cam_from_world[3 * t, :3, 3])[2]) for t in range(T)]
    for o in movers:  # each is in the grid's depth range at the anchor frame
        assert lo <= float(o.box_at(anchor)[2]) <= hi, o.name
    boxes = torch.stack([torch.stack([o.box_at(float(t)) for o in objs]) for t in range(T)])  # (T, n, 7)
    iou = box_iou_bev(boxes, boxes)
    iou = iou - torch.diag_embed(torch.diagonal(iou, dim1=-2, dim2=-1))
    assert (iou == 0).all(), "two objects' boxes overlap"
    for o in movers:  # speeds change (constant velocity is not exact) but never stop or reverse
        v0, v1 = o.velocity[2], o.velocity[2] + o.acceleration[2] * T
        assert v0 * v1 > 0 and 0.5 * abs(v0) <= abs(v1) <= 1.5 * abs(v0), o.name
    assert any(o.acceleration != (0.0, 0.0, 0.0) for o in movers)
    for o in movers:  # the ego's camera never comes within a car length of a car ahead in its lane
        if o.semantic in ("car", "van") and o.velocity[2] > 0:
            gaps = [float(o.box_at(float(t))[2] - o.box_at(0.0)[3] / 2) - ego_z[t] for t in range(T)]
            assert min(gaps) > 1.0, (o.name, gaps)


def test_traffic_sample_marks_the_moving_objects():
    s = make_sample(SynthConfig(kind="traffic-one", views=2, height=12, width=16, seed=1, occupancy=False), 0)
    assert s["rgb"].shape == (6, 3, 12, 16) and s["boxes_world"].shape[0] == 6
    assert s["box_moving"].sum() == 1
    moving = s["box_instance"][s["box_moving"]][0]
    # the moving object's box moves between the frames; the others stay
    b = s["boxes_world"]
    assert np.abs(b[3, s["box_moving"]] - b[0, s["box_moving"]]).max() > 0.1
    assert np.abs(b[3, ~s["box_moving"]] - b[0, ~s["box_moving"]]).max() < 1e-9
    assert moving > 0
