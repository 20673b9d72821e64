import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_packages_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_names = {_name(r) for r in pip_section if not r.startswith("-")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {_name(r) for r in project["dependencies"]} | {_name(r) for r in project["optional-dependencies"]["test"]}
    assert env_names == deps


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in readme and "make demo" in readme
    assert "HF_HUB_OFFLINE=1" in ci


def test_asset_packages_are_pinned():
    lines = [l for l in (ROOT / "requirements-assets.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert all("==" in l for l in lines) and len(lines) == 3
