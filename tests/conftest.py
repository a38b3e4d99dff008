import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
