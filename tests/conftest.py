import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

if os.environ.get("PYTEST_XDIST_WORKER"):  # `-n 2`: two test processes share the cores, one thread each
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip where it is absent."""
    root = Path(os.environ.get("UNRENDER_SHARED_DATA", SHARED_DATA))
    if not root.is_dir():
        pytest.skip(f"real sample data not found at {root} (set UNRENDER_SHARED_DATA)")
    return root
