import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_examples_run(path):
    for block in python_blocks(path):
        exec(compile(block, str(path), "exec"), {})


@pytest.mark.parametrize("doc", ["conventions.md", "reliability.md"])
def test_doc_tables_name_real_tests(doc):
    text = (ROOT / "docs" / doc).read_text()
    named = set(re.findall(r"`(test_\w+)`", text))
    assert len(named) >= 10
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    missing = [n for n in named if f"def {n}(" not in sources]
    assert not missing, missing
