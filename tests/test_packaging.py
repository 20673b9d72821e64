import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_names_the_same_packages_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_reqs = {r.replace(" ", "") for r in pip_section if not r.startswith("-")}
    project = _project()["project"]
    extras = project["optional-dependencies"]
    reqs = {r.replace(" ", "") for r in project["dependencies"] + extras["test"] + extras["lab"]}
    assert env_reqs == reqs          # the same names with the same ranges


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    data = _project()
    assert data["project"]["license"] == "MIT"
    floor = next(r for r in data["build-system"]["requires"] if _name(r) == "setuptools")
    assert int(re.search(r">=(\d+)", floor).group(1)) >= 77      # PEP 639 license strings: setuptools 77


def test_heavy_extras_are_optional_and_every_extra_is_used():
    project = _project()["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert not {"jupyterlab", "bitsandbytes", "openai", "trl", "vllm"} & core     # a notebook needs none of them
    extras = project["optional-dependencies"]
    # no vllm extra: vLLM pins its own torch and transformers, so it gets an environment of its own (docs/vllm.md)
    assert set(extras) == {"test", "qlora", "lab"}
    source = "\n".join(p.read_text() for p in (ROOT / "scotd_kit").rglob("*.py"))
    assert "bitsandbytes" in source                                # the extras' packages are used


def test_transformers_is_pinned_to_the_tested_range():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    req = next(Requirement(r) for r in _project()["project"]["dependencies"] if _name(r) == "transformers")
    assert version("transformers") in req.specifier
    assert "5.40.0" not in req.specifier       # past_key_values= goes in 5.40


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in readme and "make demo" in readme
    assert "HF_HUB_OFFLINE=1" in ci


def test_asset_packages_are_pinned():
    lines = [l for l in (ROOT / "requirements-assets.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert all("==" in l for l in lines) and len(lines) == 3
