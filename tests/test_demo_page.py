"""`unrender demo` writes a self-contained page that renders in headless Chromium with no console output,
shows every system, and marks every model that is not fully trained.

The browser part skips where Chromium is not installed, unless UNRENDER_REQUIRE_BROWSER=1 (CI sets it).
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
]  # fmt: skip


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("UNRENDER_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium is required (UNRENDER_REQUIRE_BROWSER=1) but not installed")
    return None


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, pytestconfig):
    out = tmp_path_factory.mktemp("demo")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the demo takes ~1 min: show its progress bars meanwhile
        print("\nrunning `unrender demo` for the demo-page tests ...", file=sys.stderr, flush=True)
        r = subprocess.run([sys.executable, "-m", "unrender", "demo", "--out", str(out)],
                           stdout=subprocess.PIPE, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, f"unrender demo failed (its errors are printed above): {r.stdout[-2000:]}"
    return out


def test_demo_page_is_self_contained(demo_dir):
    page = (demo_dir / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "<canvas" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not load anything remote"
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert summary["Synthetic world: a room from several views"]["occupied voxels (exact)"] > 0
    assert (
        summary["Geometry core: depth carving vs exact occupancy"]["IoU carved vs exact (voxels the views observe)"]
        > 0.2
    )
    assert summary["seconds"] < 600


def test_demo_page_renders_in_chromium(demo_dir, tmp_path):
    exe = chromium()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                        (demo_dir / "index.html").as_uri()], capture_output=True, text=True, timeout=120)  # fmt: skip
    body = re.search(r"<body[^>]*>", r.stdout)
    assert body is not None, r.stderr[-2000:]
    assert 'data-status="ok"' in body.group(0), body.group(0)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console
    sections = _sections(r.stdout)
    systems = (
        "Neural 3D mapping",
        "Metric monocular depth",
        "novel-view synthesis",
        "pose lifting",
        "single-view voxels",
        "Dynamic scenes",
        "Scene codes",
        "Scene fitting",
    )
    for name in systems:
        assert any(name in heading for heading in sections), f"no section for {name}: {list(sections)}"
    for heading, (attrs, body) in sections.items():
        assert "<h2>" in body and re.search(r"<(table|img|canvas|p)\b", body), f"section {heading!r} is empty"
        if "data-model" not in attrs:
            continue
        method = _method_of(heading)
        trained = _shipped_fully_trained(method)
        if 'data-model="trained"' in attrs:
            assert trained, f"{heading!r} shows {method}'s weights as trained, but they are not"
            assert 'class="warn"' not in body
        else:
            assert 'class="warn"' in body, f"{heading!r}: an untrained model without a visible warning"
        if trained:
            assert 'data-model="trained"' in attrs, f"{heading!r}: fully trained shipped weights marked untrained"
            assert re.search(r"<table class=\"metrics\">", body), f"{heading!r}: a trained model with no metrics"


def _sections(dom: str) -> dict[str, tuple[str, str]]:
    """heading -> (the section tag's attributes, its inner HTML) of the rendered page."""
    out = {}
    for m in re.finditer(r"<section([^>]*)>(.*?)</section>", dom, re.S):
        heading = re.search(r"<h2>(.*?)</h2>", m.group(2), re.S)
        assert heading is not None, m.group(0)[:200]
        out[heading.group(1)] = (m.group(1), m.group(2))
    return out


def _method_of(heading: str) -> str:
    for key, method in (("Scene codes", "code-prior"), ("Scene fitting", "radiance"), ("mapping", "mapping"),
                        ("depth", "depth"), ("novel-view", "nvs"), ("pose", "energy-pose"),
                        ("voxels", "energy-voxels")):  # fmt: skip
        if key in heading:
            return method
    raise AssertionError(f"model section {heading!r} of no known method")


def _shipped_fully_trained(method: str) -> bool:
    """Whether the package ships ``method``'s weights with their whole training schedule done."""
    from unrender.weights import SHIPPED

    folder = SHIPPED / method
    if not (folder / "model.safetensors").is_file():
        return False
    step = json.loads((folder / "state.json").read_text())["step"]
    return step >= json.loads((folder / "config.json").read_text())["train"]["max_steps"]


def test_an_image_list_is_shown_as_a_looping_animation(tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    from unrender.viz import write_report

    frames = [np.full((4, 5, 3), 40 * k, np.uint8) for k in range(3)]
    page = write_report(tmp_path / "p.html", "t", {"s": {"images": {"spin": frames}}}).read_text()
    data = re.search(r"data:image/png;base64,([^'\"]+)", page).group(1)
    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        assert im.n_frames == 3 and im.size == (5, 4)
        im.seek(2)
        assert np.asarray(im.convert("RGB"))[0, 0, 0] == 80


def test_browser_check_catches_a_broken_page(tmp_path):
    """Negative control: a script error must show up in the same check."""
    exe = chromium()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from unrender.viz import write_report

    page = write_report(tmp_path / "p.html", "t", {"s": {"x": 1.0}})
    page.write_text(page.read_text().replace("</body>", "<script>notDefined();</script></body>"))
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert any(":CONSOLE" in ln and "notDefined" in ln for ln in r.stderr.splitlines())
