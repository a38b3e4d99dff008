"""A self-contained HTML report: tables, pictures and interactive 3D point views.

Everything is inlined (PNG as base64, a small vanilla-JS canvas viewer), so the
file opens anywhere, offline, with no CDN. When the page has drawn everything it
sets ``document.body.dataset.status = "ok"``; a script error sets it to
``"error: ..."`` (the browser test reads this).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text
from .images import to_uint8

__all__ = ["write_report", "png_data_uri"]

_VIEWER_JS = r"""
(function () {
  function mat(a, b) { return [a[0]*b[0]+a[1]*b[3]+a[2]*b[6], a[0]*b[1]+a[1]*b[4]+a[2]*b[7], a[0]*b[2]+a[1]*b[5]+a[2]*b[8],
                               a[3]*b[0]+a[4]*b[3]+a[5]*b[6], a[3]*b[1]+a[4]*b[4]+a[5]*b[7], a[3]*b[2]+a[4]*b[5]+a[5]*b[8],
                               a[6]*b[0]+a[7]*b[3]+a[8]*b[6], a[6]*b[1]+a[7]*b[4]+a[8]*b[7], a[6]*b[2]+a[7]*b[5]+a[8]*b[8]]; }
  function viewer(canvas, data) {
    var ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    var pts = data.points, cols = data.colors, n = pts.length / 3, c = data.center, yaw = 0.6, pitch = 0.5, dist = data.radius * 2.6;
    function rot() {  // world (y down) -> view: yaw about y, then pitch about x
      var cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
      return mat([1, 0, 0, 0, cp, -sp, 0, sp, cp], [cy, 0, -sy, 0, 1, 0, sy, 0, cy]);
    }
    function project(R, x, y, z) {
      var px = x - c[0], py = y - c[1], pz = z - c[2];
      var vx = R[0]*px + R[1]*py + R[2]*pz, vy = R[3]*px + R[4]*py + R[5]*pz, vz = R[6]*px + R[7]*py + R[8]*pz + dist;
      var f = 0.9 * H;
      return [W / 2 + f * vx / vz, H / 2 + f * vy / vz, vz];
    }
    function draw() {
      var R = rot(), proj = new Float32Array(3 * n), order = new Uint32Array(n), i;
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
      for (i = 0; i < n; i++) { var p = project(R, pts[3*i], pts[3*i+1], pts[3*i+2]); proj[3*i] = p[0]; proj[3*i+1] = p[1]; proj[3*i+2] = p[2]; order[i] = i; }
      order.sort(function (a, b) { return proj[3*b+2] - proj[3*a+2]; });
      var s = Math.max(1.5, data.point_size * 0.9 * H / dist);
      for (var k = 0; k < n; k++) {
        i = order[k]; if (proj[3*i+2] <= 0.05) continue;
        ctx.fillStyle = "rgb(" + cols[3*i] + "," + cols[3*i+1] + "," + cols[3*i+2] + ")";
        ctx.fillRect(proj[3*i] - s / 2, proj[3*i+1] - s / 2, s, s);
      }
      ctx.lineWidth = 1.5;
      (data.cameras || []).forEach(function (cam) {
        ctx.strokeStyle = cam.color || "#d62728";
        var q = cam.lines.map(function (v) { return project(R, v[0], v[1], v[2]); });
        for (var j = 0; j + 1 < q.length; j += 2) {
          if (q[j][2] <= 0.05 || q[j+1][2] <= 0.05) continue;
          ctx.beginPath(); ctx.moveTo(q[j][0], q[j][1]); ctx.lineTo(q[j+1][0], q[j+1][1]); ctx.stroke();
        }
      });
    }
    var drag = null;
    canvas.addEventListener("mousedown", function (e) { drag = [e.clientX, e.clientY]; });
    window.addEventListener("mouseup", function () { drag = null; });
    canvas.addEventListener("mousemove", function (e) {
      if (!drag) return;
      yaw += (e.clientX - drag[0]) * 0.01; pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - drag[1]) * 0.01));
      drag = [e.clientX, e.clientY]; draw();
    });
    canvas.addEventListener("wheel", function (e) { e.preventDefault(); dist *= Math.exp(e.deltaY * 0.001); draw(); }, {passive: false});
    draw();
  }
  window.addEventListener("error", function (e) { document.body.dataset.status = "error: " + e.message; });
  window.addEventListener("load", function () {
    try {
      document.querySelectorAll("canvas[data-scene]").forEach(function (cv) {
        viewer(cv, JSON.parse(document.getElementById(cv.dataset.scene).textContent));
      });
      if (!document.body.dataset.status) document.body.dataset.status = "ok";
    } catch (err) { document.body.dataset.status = "error: " + err; throw err; }
  });
})();
"""


def png_data_uri(image: np.ndarray | Sequence[np.ndarray], *, fps: float = 10.0) -> str:
    """An ``(H, W, 3)`` image, or a sequence of them (an animated PNG looping at ``fps``: every browser plays
    it, no video codec needed), as a ``data:image/png;base64,...`` URI."""
    from PIL import Image

    buf = io.BytesIO()
    if isinstance(image, np.ndarray) and image.ndim == 3:
        Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    else:
        first, *rest = [Image.fromarray(to_uint8(f)) for f in image]
        first.save(buf, format="PNG", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _scene_json(scene: Mapping[str, Any]) -> str:
    pts = np.asarray(scene["points"], dtype=np.float64).reshape(-1, 3)
    cols = np.asarray(scene.get("colors", np.full_like(pts, 80)), dtype=np.uint8).reshape(-1, 3)
    lo, hi = pts.min(0) if len(pts) else np.zeros(3), pts.max(0) if len(pts) else np.ones(3)
    data = {
        "points": np.round(pts, 3).reshape(-1).tolist(),
        "colors": cols.reshape(-1).tolist(),
        "center": ((lo + hi) / 2).tolist(),
        "radius": float(max(np.linalg.norm(hi - lo) / 2, 1e-3)),
        "point_size": float(scene.get("point_size", 0.05)),
        "cameras": [
            {
                "lines": np.round(np.asarray(c["lines"], dtype=np.float64), 3).tolist(),
                "color": c.get("color", "#d62728"),
            }
            for c in scene.get("cameras", [])
        ],
    }
    return json.dumps(data).replace("</", "<\\/")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_report(
    path: str | Path, title: str, sections: Mapping[str, Mapping[str, Any]], *, intro: str | None = None
) -> Path:
    """Write a single self-contained HTML file.

    ``intro`` is a paragraph under the title. ``sections`` maps a heading to a dict: numbers and strings
    go in a table, except these keys:

    * ``"about"``: a paragraph under the heading;
    * ``"model"``: the state of the section's model: ``"trained"``, or a sentence saying why it is not
      (untrained, cut short, no weights), shown as a warning; the section element carries
      ``data-model="trained"`` or ``data-model="untrained"`` (the browser test reads it);
    * ``"metrics"``: a list of ``{"name", "value", "unit", "better", "baseline", "target"}`` rows
      (``better`` is ``"higher"`` or ``"lower"``), shown as a table with those columns;
    * ``"legend"``: a caption -> ``{name: (r, g, b)}`` colour swatches (e.g. the semantic classes);
    * ``"images"``: a caption -> ``(H, W, 3)`` uint8 array, or a list of them (shown as a looping animation);
    * ``"scene3d"``: a caption -> ``{"points" (N, 3), "colors" (N, 3) uint8, "point_size",
      "cameras": [{"lines": (2L, 3) segment end points, "color"}]}`` shown in an interactive viewer
      (drag to turn, wheel to zoom).
    """
    path = Path(path)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}td,th{padding:2px 10px;"
        "text-align:left}img{image-rendering:pixelated;max-width:100%}canvas{border:1px solid #ccc;cursor:grab}"
        "figure{margin:1em 0}figcaption{color:#555}.warn{background:#fde2e1;border-left:4px solid #c0392b;"
        "padding:.4em .8em}.intro{font-size:1.1em}table.metrics th{background:#eee}"
        ".swatch{display:inline-block;width:1em;height:1em;margin:0 .3em 0 .8em;vertical-align:middle;"
        "border:1px solid #888}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p class='intro'>{html.escape(intro)}</p>")
    n3d = 0
    special = ("images", "scene3d", "about", "model", "metrics", "legend")
    for heading, values in sections.items():
        model = values.get("model")
        state = "" if model is None else f" data-model='{'trained' if model == 'trained' else 'untrained'}'"
        parts.append(f"<section data-section='{html.escape(heading)}'{state}><h2>{html.escape(heading)}</h2>")
        if values.get("about"):
            parts.append(f"<p>{html.escape(str(values['about']))}</p>")
        if model is not None and model != "trained":
            parts.append(f"<p class='warn'>{html.escape(str(model))}</p>")
        metrics = list(values.get("metrics", []))
        if metrics:
            cols = ("name", "value", "unit", "better", "baseline", "target")
            parts.append("<table class='metrics'><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
            for m in metrics:
                cells = [_cell(m.get(c)) for c in cols]
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            parts.append("</table>")
        rows = [(k, v) for k, v in values.items() if k not in special]
        if rows:
            parts.append("<table>")
            for k, v in rows:
                parts.append(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>")
            parts.append("</table>")
        for caption, colours in dict(values.get("legend", {})).items():
            swatches = "".join(
                f"<span class='swatch' style='background:rgb({int(c[0])},{int(c[1])},{int(c[2])})'></span>"
                f"{html.escape(str(name))} "
                for name, c in colours.items()
            )
            parts.append(f"<p class='legend'>{html.escape(caption)}: {swatches}</p>")
        for caption, im in dict(values.get("images", {})).items():
            im = np.asarray(im) if isinstance(im, np.ndarray) else [np.asarray(f) for f in im]
            parts.append(f"<figure><img src='{png_data_uri(im)}' alt='{html.escape(caption)}'>")
            parts.append(f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for caption, scene in dict(values.get("scene3d", {})).items():
            sid = f"scene{n3d}"
            n3d += 1
            parts.append(f"<figure><canvas width='720' height='480' data-scene='{sid}'></canvas>")
            parts.append(f"<figcaption>{html.escape(caption)} (drag to turn, wheel to zoom)</figcaption></figure>")
            parts.append(f"<script type='application/json' id='{sid}'>{_scene_json(scene)}</script>")
        parts.append("</section>")
    parts.append(f"<script>{_VIEWER_JS}</script></body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
