import json
import os
from pathlib import Path

# The hub is unreachable here and in CI: fail fast instead of ~50 s per miss.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Numbers in tests must not move with the host's CPU: every model runs in fp32 unless a test asks the
# hardware rule itself (tests/machines.py's stand-ins clear this and fake torch's answers).
os.environ.setdefault("SCOTD_PRECISION", "fp32")

import pytest  # noqa: E402

from scotd_kit.paths import data_dir  # noqa: E402

from .fixture_records import FIXTURE_FILES  # noqa: E402
from .machines import MACHINES, stand_in  # noqa: E402

SHARED = data_dir()


def shared_file(rel: str) -> Path:
    """A file of ../shared/data, or a skip that says why."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} is absent (the papers' original files live in ../shared/data; see its SOURCES.md)")
    return path


@pytest.fixture
def fixture_data_dir(tmp_path) -> Path:
    """The project's own small fixtures, written in each dataset's original schema and file layout."""
    for rel, records in FIXTURE_FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".jsonl"):
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
        elif rel.endswith(".json"):
            path.write_text(json.dumps(records))
        else:
            path.write_text(records)
    return tmp_path


@pytest.fixture(params=MACHINES)
def machine(request, monkeypatch) -> str:
    """Each stand-in machine in turn (tests/machines.py); the test gets its name."""
    stand_in(monkeypatch, request.param)
    return request.param
