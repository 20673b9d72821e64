"""``scotd-kit reproduce``: run the notebooks through papermill under a profile, then summarise.

Each notebook gets the parameters ``profile``, ``output_dir`` and ``overrides`` (profile settings by
name); ``parameters`` given here that name a profile setting (``max_steps``, ``tasks``, ``teacher``...)
go into ``overrides``, any other one (``task``) is passed to the notebook as is -- what papermill's
``-p`` does.  The Socratic notebooks have their own settings (``scotd_kit.socratic.settings``), given
as one dict, ``socratic`` (``-p socratic='{sizes: [gpt2], train_steps: 100}'``).  Anything secret (API keys) is read from the environment inside the notebook, never
passed here (papermill writes parameters into the executed notebook).  A failed notebook does not
stop the others; it is reported with the path of its executed copy.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .io import atomic_write_text
from .report import markdown_table

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# the two papers' notebooks run apart (``make demo`` / ``make demo-socratic``), each with its own summary file
SUITES = ("all", "scotd", "socratic")
SUMMARY_STEM = {"all": "summary", "scotd": "summary", "socratic": "socratic_summary"}


def in_suite(stem: str, suite: str) -> bool:
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    return suite == "all" or stem.startswith("socratic_") == (suite == "socratic")


# names of secrets (api_key, hf_token, password...), not settings that merely mention tokens (max_new_tokens)
_SECRET = re.compile(r"(^|_)(api_?key|key|secret|password|passwd|token|auth)(_|$)", re.I)
_CREDENTIAL_URL = re.compile(r"://[^/\s@]+@|[?&][^=&\s]*(key|token|secret|password|sig)[^=&\s]*=", re.I)


@dataclass
class NotebookRun:
    name: str
    ok: bool
    seconds: float
    executed: str
    error: str = ""


@dataclass
class Summary:
    profile: str
    output_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    socratic: dict = field(default_factory=dict)     # the Socratic notebooks' settings overrides
    claims_seconds: float = 0.0
    suite: str = "all"

    @property
    def summary_path(self) -> Path:
        return self.output_dir / f"{SUMMARY_STEM[self.suite]}.md"

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if not r.ok]


class UnknownNotebookError(FileNotFoundError):
    """A selected name or glob matches no notebook; the message lists the names there are."""


def list_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR, select: list[str] | None = None,
                   suite: str = "all") -> list[Path]:
    paths = sorted(p for p in Path(notebooks_dir).glob("*.ipynb")
                   if not p.name.startswith("_") and in_suite(p.stem, suite))
    if select:
        # every name must match: a typo would otherwise silently run fewer notebooks
        unknown = [s for s in select if not any(fnmatch.fnmatch(p.stem, s) or p.stem == s for p in paths)]
        if unknown:
            raise UnknownNotebookError(f"no notebook in {notebooks_dir} matches {', '.join(map(repr, unknown))}; "
                                       f"known notebooks: {', '.join(p.stem for p in paths) or '(none)'}")
        paths = [p for p in paths if any(fnmatch.fnmatch(p.stem, s) or p.stem == s for s in select)]
    return paths


def parse_parameter(text: str) -> tuple[str, object]:
    """``name=value`` with the value read as YAML (so JSON too), as papermill's ``-p`` / ``-y`` read them:
    ``max_steps=100`` -> 100, ``tasks=[commonsense_qa, openbookqa]`` -> a list, ``teacher=replay:dir`` -> str."""
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise ValueError(f"a parameter is NAME=VALUE, not {text!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return name.strip(), parsed


def split_parameters(parameters: dict | None) -> dict:
    """Profile settings go into the notebooks' ``overrides`` dict; other parameters stay as they are."""
    from .profiles import profile_fields

    parameters = dict(parameters or {})
    fields = profile_fields()
    overrides = dict(parameters.pop("overrides", None) or {})
    overrides.update({k: parameters.pop(k) for k in list(parameters) if k in fields})
    return {**parameters, **({"overrides": overrides} if overrides else {})}


def check_writable(*dirs: Path) -> None:
    """Create each directory and write a probe file in it: a read-only output dir is an error before
    any notebook runs, not after all of them did."""
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise PermissionError(e.errno, f"cannot write to {d} ({e.strerror}); pick another directory "
                                           f"(--output-dir / --executed-dir)") from None


def run_notebook(path: Path, profile: str, output_dir: Path, executed_dir: Path,
                 parameters: dict | None = None, kernel: str = "python3") -> NotebookRun:
    import papermill

    params = {"profile": profile, "output_dir": str(output_dir.resolve()), **split_parameters(parameters)}
    named = {**params, **params.get("overrides", {})}
    secret = [k for k, v in named.items() if _SECRET.search(k) or _CREDENTIAL_URL.search(str(v))]
    if secret:
        raise ValueError(f"refusing to pass {secret} as notebook parameters: papermill writes parameters into "
                         f"the executed notebook; set secrets as environment variables instead")
    executed = executed_dir / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(executed), parameters=params, kernel_name=kernel,
                                   cwd=str(path.parent), progress_bar=False)
        return NotebookRun(path.stem, True, time.perf_counter() - start, str(executed))
    except Exception as e:  # report and carry on with the other notebooks
        return NotebookRun(path.stem, False, time.perf_counter() - start, str(executed),
                           f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"[:500])


def reproduce(profile: str = "demo", select: list[str] | None = None, output_dir: str | Path = "figures",
              executed_dir: str | Path | None = None, notebooks_dir: Path = NOTEBOOKS_DIR,
              parameters: dict | None = None, progress: bool = True, claims: bool | None = None,
              suite: str = "all") -> Summary:
    """Run the selected notebooks (all of ``suite`` by default) and write ``summary.md`` / ``summary.csv``
    (``socratic_summary.*`` for the Socratic suite).

    ``claims``: also check SCoTD's central claims on the notebooks' runs and write ``claims.csv``
    (:mod:`scotd_kit.claims`); ``None``: when every SCoTD notebook runs under the ``smoke`` or ``demo``
    profile (there the students they need are the notebooks' own, so nothing new is trained)."""
    from tqdm.auto import tqdm

    out = Path(output_dir) / profile
    executed = Path(executed_dir) if executed_dir else Path("runs") / "executed" / profile
    summary = Summary(profile, out, overrides=split_parameters(parameters).get("overrides", {}),
                      socratic=dict((parameters or {}).get("socratic") or {}), suite=suite)
    notebooks = list_notebooks(notebooks_dir, select, suite)
    check_writable(out, executed)
    bar = tqdm(notebooks, desc=f"reproduce [{profile}]", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.stem)
        run = run_notebook(path, profile, out, executed, parameters)
        summary.runs.append(run)
        status = "ok" if run.ok else f"FAILED ({run.error}); see {run.executed}"
        bar.write(f"{path.stem}: {status} in {run.seconds:.0f}s")
    if claims if claims is not None else (not select and suite != "socratic" and profile in ("smoke", "demo")):
        summary.claims_seconds = write_claims(summary)
    write_summary(summary)
    return summary


def write_claims(summary: Summary) -> float:
    """``claims.csv`` / ``claims.md`` of the profile's runs under the summary's output dir; the seconds it took."""
    from . import claims as claims_mod
    from .experiments import Lab

    start = time.perf_counter()
    try:
        claims_mod.write(Lab(summary.profile, **summary.overrides), summary.output_dir)
    except Exception as e:  # the notebooks' results stand; the summary says why the claims are missing
        atomic_write_text(summary.output_dir / "claims.md", f"Claims could not be computed: {type(e).__name__}: {e}\n")
    return time.perf_counter() - start


def profile_header(summary: Summary) -> str:
    """What the profile is, before any number: its description, what it needs, and what was overridden."""
    from .profiles import PROFILES, differences_from_paper, get_profile

    if summary.profile not in PROFILES:
        return ""
    base = PROFILES[summary.profile]
    try:
        prof = get_profile(summary.profile, **summary.overrides)
    except (TypeError, ValueError):
        prof = base
    lines = [f"**What this is**: {base.description}.", f"**Needs**: {base.needs}."]
    if summary.overrides:
        lines.append("**Overridden**: " + ", ".join(f"`{k}={v!r}`" for k, v in summary.overrides.items()) + ".")
    if prof.notebook_settings and summary.suite != "socratic":
        lines.append("**Per-notebook settings** (on top of the above): " + "; ".join(
            f"{nb}: " + ", ".join(f"`{k}={v!r}`" for k, v in own.items()) for nb, own in prof.notebook_settings.items())
            + ".")
    differs = differences_from_paper(prof)
    lines.append("**Settings**: the paper's (numbers below are compared)." if not differs else
                 "**Settings differ from the paper's**: " + "; ".join(differs) +
                 " -- these numbers are not a reproduction of the paper's.")
    if summary.socratic:
        from .socratic.settings import differences_from_paper as socratic_differences, socratic_settings

        lines.append("**Socratic settings overridden**: " +
                     ", ".join(f"`{k}={v!r}`" for k, v in summary.socratic.items()) + ".")
        try:
            s = socratic_settings(summary.profile, **summary.socratic)
            lines.append("**Socratic settings differ from the paper's**: " +
                         "; ".join(socratic_differences(summary.profile, s, *s.sizes)) + "."
                         if socratic_differences(summary.profile, s, *s.sizes) else
                         "**Socratic settings**: the paper's.")
        except (KeyError, TypeError, ValueError) as e:
            lines.append(f"**Socratic settings**: not read ({e}).")
    return "\n".join(lines) + "\n\n"


def scale_notes(summary: Summary) -> str:
    """What the profile's figures show and do not show at its scale, for the notebooks this run ran."""
    from .profiles import PROFILES

    notes = getattr(PROFILES.get(summary.profile), "notebook_notes", {})
    ran = [r.name for r in summary.runs if r.name in notes]
    if not ran:
        return ""
    return ("## What the figures show at this scale\n\n" + "".join(f"- **{name}**: {notes[name]}\n" for name in ran)
            + "\n")


def write_summary(summary: Summary) -> None:
    """Gather the suite's ``*.cells.json`` under the output dir into summary.csv / summary.md."""
    import pandas as pd

    out = summary.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cells = [row for p in sorted(out.glob("*.cells.json")) if in_suite(p.name, summary.suite)
             for row in json.loads(p.read_text())]
    frame = pd.DataFrame(cells)
    atomic_write_text(summary.summary_path.with_suffix(".csv"), frame.to_csv(index=False))
    runs = pd.DataFrame([{"notebook": r.name, "ok": r.ok, "seconds": round(r.seconds, 1), "error": r.error}
                         for r in summary.runs])
    total = sum(r.seconds for r in summary.runs) + summary.claims_seconds
    claims_md = out / "claims.md"
    claims = ("## SCoTD's central claims at this profile's scale (claims.csv)\n\n" + claims_md.read_text() + "\n"
              if claims_md.exists() and summary.suite != "socratic" else "")
    text = (f"# Reproduction summary: profile `{summary.profile}`\n\n" + claims + scale_notes(summary) +
            profile_header(summary) +
            f"Notebooks run: {len(summary.runs)}, failed: {len(summary.failed)}, wall time {total / 60:.1f} min"
            f" (claims: {summary.claims_seconds:.0f} s).\n"
            "A `diff` to the paper appears only where the kit ran the paper's own task with the paper's settings; "
            "every other row says `not comparable: <why>`, and a cell that could not be made says why.\n\n"
            "## Notebooks\n\n" + (markdown_table(runs) if len(runs) else "(none)\n") +
            "\n## Cells\n\n" + (markdown_table(frame.drop(columns=["ci_low", "ci_high", "not_comparable",
                                                                 "unavailable"], errors="ignore"))
                                if len(frame) else "(none)\n"))
    atomic_write_text(summary.summary_path, text)
