"""Shared helpers for benchmarks: ``python benchmarks/NAME.py [--quick] [--out FILE.json]``.

Every benchmark measures the kit and its baseline in the same process on the same hardware,
prints a table, and writes JSON with the measured figures and ``ratio`` = kit / baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small workload (minutes on 2 CPU cores)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    return parser.parse_args()


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def environment() -> dict:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def report(name: str, rows: list[dict], result: dict, out: Path | None) -> dict:
    """Print ``rows`` as a table and write ``result`` (must hold ``ratio``) with the environment."""
    assert "ratio" in result, "a benchmark reports ratio = kit / baseline"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols))
    print(f"ratio (kit / baseline): {result['ratio']:.2f}")
    payload = {"benchmark": name, **result, "rows": rows, "environment": environment()}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n")
    return payload


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))
