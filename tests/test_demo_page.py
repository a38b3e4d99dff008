"""`unrender demo` writes a self-contained page that renders in headless Chromium with no console output.

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
    with capture.global_and_fixture_disabled():  # the demo takes ~45 s: show its progress bars meanwhile
        print("\nrunning `unrender demo` for the demo-page tests ...", file=sys.stderr, flush=True)
        r = subprocess.run([sys.executable, "-m", "unrender", "demo", "--out", str(out), "--steps", "5"],
                           stdout=subprocess.PIPE, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, f"unrender demo failed (its errors are printed above): {r.stdout[-2000:]}"
    return out


def test_demo_page_is_self_contained(demo_dir):
    page = (demo_dir / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "<canvas" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not load anything remote"
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert summary["room"]["occupied voxels (exact)"] > 0
    assert summary["geometry"]["IoU carved vs exact (voxels the views observe)"] > 0.2


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
