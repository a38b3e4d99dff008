"""Evaluation of the code prior on held-out rooms' code grids, against two random priors.

* **Bits per code** (held-out negative log-likelihood, base 2) of the grids under the prior in the plain
  raster order, under the *unigram* prior (each code drawn independently with its frequency in the
  training grids, add-one smoothed) and under the *uniform* prior (``log2 K``). A likelihood, not an
  "inception"-style score: a trained classifier's confidence on decoded samples rewards whatever that
  classifier likes and is known to be a poor proxy; the held-out likelihood measures what the prior is for.
* **Inpainting**: in each held-out grid a cube of ``block`` codes (placed at random, seeded, among the
  positions whose rooms hold something there) is deleted and drawn ``samples`` times by each prior, the
  rest kept. Scored on the deleted block: code accuracy, and occupancy IoU of the decoded grid (the
  quantised mapping model's decoder) against the room's exact occupancy in the block's voxels. ``first`` is
  the first draw (= min_1), ``min_K`` the best of the first K draws (best by each score separately: an
  oracle pick, as in the literature). ``codes kept`` is the IoU of decoding the true codes (the ceiling).
  ``prior-raster`` is the prior scanning in the plain raster order instead of the chosen one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ...data.codes import CodeGrids
from ...metrics import voxel_iou
from ...nn import raster_index
from .config import PriorConfig

__all__ = [
    "evaluate_prior",
    "load_decoder",
    "choose_order",
    "unigram_probabilities",
    "delete_block",
    "score_fills",
    "fill_cells",
    "prior_loss",
    "prior_markdown_table",
]

KS = (1, 4, 16)


def unigram_probabilities(grids: CodeGrids) -> torch.Tensor:
    """Code frequencies of ``grids`` with add-one smoothing, ``(K,)``."""
    counts = torch.bincount(grids.codes.reshape(-1), minlength=grids.num_codes).double() + 1
    return counts / counts.sum()


def choose_order(fill: torch.Tensor, orders: int) -> int:
    """The scan order (of ``orders``) in which the cells of ``fill (Z, Y, X)`` come after the most known
    cells: the sum over filled cells of the known cells scanned before them (ties: the lowest order, the
    plain raster scan first)."""
    best, best_score = 0, -1
    for o in range(orders):
        rank = raster_index(tuple(fill.shape), o)
        known = torch.sort(rank[~fill]).values
        score = int(torch.searchsorted(known, rank[fill]).sum())  # known cells before each filled one
        if score > best_score:
            best, best_score = o, score
    return best


def delete_block(occ: torch.Tensor, grid: tuple[int, int, int], block: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, tuple[slice, slice, slice]]:  # fmt: skip
    """A seeded random cube of ``block`` cells (clipped per axis) of a code grid ``grid`` whose voxels hold
    some occupancy in the full-resolution ``occ (Z, Y, X)`` (a whole multiple of ``grid``): ``(fill (Z, Y, X)
    bool, the block's full-resolution slices)``. Any position when none holds any."""
    factor = occ.shape[0] // grid[0]
    size = [min(block, n) for n in grid]
    starts = [(z, y, x) for z in range(grid[0] - size[0] + 1) for y in range(grid[1] - size[1] + 1)
              for x in range(grid[2] - size[2] + 1)]  # fmt: skip

    def cells(start: tuple[int, ...], f: int = 1) -> tuple[slice, ...]:
        return tuple(slice(f * a, f * (a + s)) for a, s in zip(start, size, strict=True))

    perm = torch.randperm(len(starts), generator=generator).tolist()
    choice = next((starts[p] for p in perm if occ[cells(starts[p], factor)].any()), starts[perm[0]])
    fill = torch.zeros(grid, dtype=torch.bool)
    fill[cells(choice)] = True
    return fill, cells(choice, factor)


def score_fills(decoder: torch.nn.Module, true: torch.Tensor, fills: dict[str, torch.Tensor], fill: torch.Tensor,
                region: tuple[slice, ...], occ: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:  # fmt: skip
    """Each ``fills[name] (S, Z, Y, X)`` (the code grid ``true`` with the cells of ``fill`` drawn again) scored
    on the deleted block: ``acc (S,)`` code accuracy, ``iou (S,)`` decoded occupancy IoU against ``occ`` in
    ``region``, and the decoder's outputs ``out``."""
    device = next(decoder.parameters()).device
    target = occ[region][None]
    scores = {}
    for name, codes in fills.items():
        out = decoder.decode_codes(codes.to(device))
        prob = torch.sigmoid(out["occ_logits"][:, 0]).cpu()
        scores[name] = {"acc": (codes[:, fill] == true[fill]).float().mean(1),
                        "iou": voxel_iou(prob[(slice(None), *region)], target.expand(len(codes), *target.shape[1:])),
                        "out": out}  # fmt: skip
    return scores


def load_decoder(meta: dict[str, Any], device: torch.device):
    """The quantised mapping model that made a dump (``meta``) and its held-out rooms (for exact occupancy):
    ``(mapping config, model, MappingDataset)``."""
    from ...weights import load_trained
    from .. import get_method  # by name: no method imports another

    mcfg, model, _, _ = load_trained("mapping", meta["checkpoint"], str(device))
    mcfg.data.num_val = int(meta["scenes"])
    data = get_method("mapping").build_dataset(mcfg, "val")
    return mcfg, model, data


def _view_batch(item: dict[str, torch.Tensor], n: int, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: item[k][None].expand(n, *item[k].shape).to(device) for k in ("rgb_out", "K_out", "cam_from_mem_out")}


@torch.no_grad()
def evaluate_prior(model: torch.nn.Module, cfg: PriorConfig, device: torch.device) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from ...viz import image_grid

    e = cfg.eval
    train, val = CodeGrids(cfg.data.codes / "train"), CodeGrids(cfg.data.codes / "val")
    K = model.num_codes
    if train.num_codes != K or val.num_codes != K:
        raise ValueError(f"code prior: the model has {K} codes, the dump {cfg.data.codes} {val.num_codes}")
    res: dict[str, Any] = {"held_out_grids": len(val)}
    # bits per code on every held-out grid
    nll = torch.cat([model.nll(val.codes[i : i + 64].to(device)).float().cpu() for i in range(0, len(val), 64)])
    uni = unigram_probabilities(train)
    res["bits/prior"] = float(nll.mean()) / math.log(2)
    res["bits/unigram"] = float(-torch.log2(uni[val.codes]).mean())
    res["bits/uniform"] = math.log2(K)
    res["bits/prior_below_unigram"] = 1 - res["bits/prior"] / res["bits/unigram"]
    # inpainting
    _, decoder, rooms = load_decoder(val.meta, device)
    grid = tuple(val.codes.shape[1:])
    S = e.samples
    scores: dict[str, list[float]] = {}
    rows = []
    orders_used = set()
    n = min(e.scenes, len(val))
    for j in tqdm(range(n), desc="inpaint held-out grids", unit="grid"):
        g = torch.Generator().manual_seed(e.seed * 100003 + j)
        true = val.codes[j]
        room = rooms[j]
        occ = room["occ"][0] > 0.5
        fill, region = delete_block(occ, grid, e.block, g)
        order = choose_order(fill, model.orders) if e.choose_order else 0
        orders_used.add(order)
        m = int(fill.sum())
        copies = true[None].repeat(S, 1, 1, 1).to(device)
        drawn = {
            "prior": model.sample(copies, fill, order=order, temperature=e.temperature, generator=g).cpu(),
            "unigram": fill_cells(true, fill, torch.multinomial(uni.float(), S * m, replacement=True, generator=g)),
            "uniform": fill_cells(true, fill, torch.randint(K, (S * m,), generator=g)),
        }
        if e.choose_order and model.orders > 1:  # what the choice of order is worth: the plain raster scan
            drawn["prior-raster"] = drawn["prior"] if order == 0 else model.sample(
                copies, fill, order=0, temperature=e.temperature, generator=g).cpu()  # fmt: skip
        scored = score_fills(decoder, true, {"codes_kept": true[None], **drawn}, fill, region, occ)
        _add(scores, "inpaint/codes_kept/occ_iou", float(scored.pop("codes_kept")["iou"][0]))
        for name, sc in scored.items():
            acc, iou = sc["acc"], sc["iou"]
            _add(scores, f"inpaint/{name}/code_acc/first", float(acc[0]))
            _add(scores, f"inpaint/{name}/occ_iou/first", float(iou[0]))
            for k in KS[1:]:
                if k <= S:
                    _add(scores, f"inpaint/{name}/code_acc/min{k}", float(acc[:k].max()))
                    _add(scores, f"inpaint/{name}/occ_iou/min{k}", float(iou[:k].max()))
        if j < 4:  # the held-out view rendered from: the true codes, the prior's and the unigram's first draw
            batch = _view_batch(room, 3, device)
            three = torch.stack([true, drawn["prior"][0], drawn["unigram"][0]]).to(device)
            views = decoder.decode_codes(three, batch)["rgb_pred"].float().clamp(0, 1).cpu()
            rows.append([room["rgb_out"], *views])
    res.update({k: sum(v) / len(v) for k, v in scores.items()})
    res["inpaint/scenes"] = n
    res["inpaint/block_codes"] = int(fill.sum())
    res["inpaint/orders_used"] = len(orders_used)
    images = {"held-out view | decoded true codes | block inpainted by the prior (first draw) | by the unigram prior":
              image_grid(rows, scale=2)}  # fmt: skip
    if e.generate:  # unconditional samples, rendered from a held-out room's camera
        g = torch.Generator().manual_seed(e.seed)
        start = torch.zeros(e.generate, *grid, dtype=torch.long, device=device)
        gen = model.sample(start, torch.ones(grid, dtype=torch.bool), temperature=e.temperature, generator=g)
        rand = torch.multinomial(uni.float(), grid[0] * grid[1] * grid[2], replacement=True, generator=g)
        batch = _view_batch(rooms[0], e.generate + 1, device)
        codes = torch.cat([gen, rand.reshape(1, *grid).to(device)])
        views = decoder.decode_codes(codes, batch)["rgb_pred"].float().clamp(0, 1).cpu()
        images[f"{e.generate} unconditional samples of the prior | a unigram sample (decoded, one room's camera)"] = (
            image_grid([list(views)], scale=2)
        )
        res["generate/prior_bits_of_own_samples"] = float(model.nll(gen).mean()) / math.log(2)
    res["images"] = images
    return res


def fill_cells(true: torch.Tensor, fill: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """``S`` copies of ``true`` with the cells of ``fill`` set to ``draws (S * cells,)``."""
    m = int(fill.sum())
    out = true[None].repeat(len(draws) // m, 1, 1, 1)
    out[:, fill] = draws.reshape(-1, m)
    return out


def _add(acc: dict[str, list[float]], k: str, v: float) -> None:
    acc.setdefault(k, []).append(v)


def prior_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cross-entropy of each grid's codes given the codes before them in the grid's scan order (``order``)."""
    codes, orders = batch["codes"], batch["order"]
    total = codes.new_zeros((), dtype=torch.float32)
    for o in torch.unique(orders).tolist():
        pick = orders == o
        logits = model(codes[pick], int(o))
        total = total + F.cross_entropy(logits.float(), codes[pick], reduction="sum")
    nats = total / codes.numel()
    return {"loss": nats, "bits_per_code": nats.detach() / math.log(2)}


def prior_markdown_table(columns: dict[str, dict[str, float]], command: str) -> str:
    """One table per checkpoint: priors (rows) x held-out bits per code and inpainting scores (columns)."""
    names = {"prior": "autoregressive prior (scan order chosen)", "prior-raster": "autoregressive prior (raster order)",
             "unigram": "unigram prior", "uniform": "uniform prior"}  # fmt: skip
    cols = [(f"{s}/{k}", f"{'code acc' if s == 'code_acc' else 'occ IoU'} {k}") for s in ("code_acc", "occ_iou")
            for k in ("first", "min4", "min16")]  # fmt: skip
    out = [f"Produced by `{command}`.\n"]
    for run, m in columns.items():
        out.append(
            f"`{run}`: {m.get('held_out_grids', '?')} held-out grids scored for bits per code; "
            f"{m.get('inpaint/scenes', '?')} inpainted ({m.get('inpaint/block_codes', '?')} codes deleted "
            f"each; {m.get('trained_steps', '?')} of {m.get('schedule_steps', '?')} training steps).\n"
        )
        out.append("| prior | bits per code | " + " | ".join(c for _, c in cols) + " |")
        out.append("|---|---|" + "---|" * len(cols))
        for key, label in names.items():
            bits = m.get("bits/prior" if key == "prior-raster" else f"bits/{key}")  # scored in raster order
            cells = [f"{bits:.3f}" if bits is not None else "-"]
            cells += [f"{m[f'inpaint/{key}/{c}']:.3f}" if f"inpaint/{key}/{c}" in m else "-" for c, _ in cols]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        kept = m.get("inpaint/codes_kept/occ_iou")
        if kept is not None:
            out.append(f"| the true codes, decoded (ceiling of one draw) | - | - | - | - | {kept:.3f} | - | - |")
        out.append("")
    return "\n".join(out)
