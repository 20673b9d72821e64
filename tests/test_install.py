"""The user's path without a clone: a wheel, installed into an environment that cannot see the source
tree, runs ``scotd-kit reproduce`` from an empty directory; without its notebooks it says why."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "requirements-assets.txt", "scotd_kit", "notebooks")
NOISE = ("Unable to parse line", "Passed unknown parameter", "without encryption", "Traceback")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tree (the build writes build/ and *.egg-info beside its input)."""
    root = tmp_path_factory.mktemp("build")
    src = root / "src"
    src.mkdir()
    for name in SOURCE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, src / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist",
                  src])
    assert built.returncode == 0, built.stderr
    return next((root / "dist").glob("scotd_kit-*.whl"))


@pytest.fixture(scope="module")
def clean(wheel, tmp_path_factory) -> dict:
    """A fresh venv with only the wheel installed; the test environment's site-packages reach it as a plain
    path entry, so their .pth files (the editable install's finder among them) are never run."""
    root = tmp_path_factory.mktemp("clean")
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
                      wheel])
    assert installed.returncode == 0, installed.stderr
    kernel = _run([python, "-m", "ipykernel", "install", "--prefix", venv, "--name", "python3"])
    assert kernel.returncode == 0, kernel.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SCOTD_", "JUPYTER"))}
    # SCOTD_RUNS_DIR relative: read against the working directory
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONNOUSERSITE="1", SCOTD_PRECISION="fp32",
               JUPYTER_PATH=str(venv / "share" / "jupyter"), SCOTD_RUNS_DIR="run_cache")
    work = root / "work"
    work.mkdir()
    return {"python": python, "site": site, "script": venv / "bin" / "scotd-kit", "env": env, "work": work}


def test_the_wheel_carries_the_notebooks(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    ours = {Path(n).name for n in names if n.startswith("scotd_kit/notebooks/")}
    assert ours == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    meta = next(n for n in names if n.endswith("METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(meta).decode()


def test_the_clean_environment_cannot_see_the_source_tree(clean):
    code = "import scotd_kit, sys, json; print(json.dumps([scotd_kit.__file__, sys.path]))"
    probe = _run([clean["python"], "-c", code], cwd=clean["work"], env=clean["env"])
    where, path = json.loads(probe.stdout)
    assert Path(where).is_relative_to(clean["site"])
    assert not any(str(ROOT) == p or p.startswith(str(ROOT) + "/scotd_kit") for p in path)


def test_reproduce_from_an_empty_directory_runs_one_notebook_and_writes_its_summary_there(clean):
    work = clean["work"]
    run = _run([clean["script"], "reproduce", "--profile", "smoke", "00_quickstart"], cwd=work, env=clean["env"])
    assert run.returncode == 0, run.stdout + run.stderr
    summary = work / "figures" / "smoke" / "summary.md"
    assert summary.is_file() and f"summary: {summary}" in run.stdout
    record = json.loads((work / "figures" / "smoke" / "summary.reproduce.json").read_text())
    assert [r["name"] for r in record["runs"]] == ["00_quickstart"] and record["runs"][0]["ok"]
    assert (work / "runs" / "executed" / "smoke" / "00_quickstart.ipynb").is_file()
    assert (work / "run_cache" / "smoke").is_dir()                # the relative SCOTD_RUNS_DIR, read here
    assert f"notebooks: {clean['site'] / 'scotd_kit' / 'notebooks'}" in summary.read_text()
    assert not [n for n in NOISE if n in run.stderr], run.stderr   # no papermill or kernel warnings


def test_without_its_notebooks_reproduce_says_where_it_looked(clean):
    nbs = clean["site"] / "scotd_kit" / "notebooks"
    hidden = nbs.with_name("notebooks.hidden")
    nbs.rename(hidden)
    try:
        run = _run([clean["script"], "reproduce", "--profile", "smoke", "00_quickstart"], cwd=clean["work"],
                   env=clean["env"])
    finally:
        hidden.rename(nbs)
    assert run.returncode == 2
    assert "no notebooks" in run.stderr and str(nbs) in run.stderr and "Traceback" not in run.stderr
