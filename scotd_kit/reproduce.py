"""``scotd-kit reproduce``: run the notebooks through papermill under a profile, then summarise.

Each notebook gets the parameters ``profile``, ``output_dir`` and ``overrides`` (profile settings by
name); ``parameters`` given here that name a profile setting (``max_steps``, ``tasks``, ``teacher``...)
go into ``overrides``, any other one (``task``) is passed to the notebooks whose parameters cell
declares it -- what papermill's ``-p`` does.  The Socratic notebooks have their own settings
(``scotd_kit.socratic.settings``), given as one dict, ``socratic`` (``-p socratic='{sizes: [gpt2],
train_steps: 100}'``).

Every parameter is checked before the first notebook starts (:func:`check_parameters`): an unknown
name (with the closest known one), a value of the wrong type or past the pipeline's limits, an unknown
task, a name ``reproduce`` sets itself.  Paths are read against the directory the command runs in,
which is also the notebooks' working directory, and recorded absolute.  Anything secret (API keys) is
read from the environment inside the notebook, never passed here (papermill writes parameters into
the executed notebook).  A failed notebook does not stop the others; it is reported with the path of
its executed copy.
"""
from __future__ import annotations

import ast
import contextlib
import fnmatch
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .io import atomic_write_text
from .paths import NOTEBOOKS_DIR, NotebooksNotFoundError, find_notebooks_dir  # noqa: F401 (re-exported)
from .report import markdown_table

# the two papers' notebooks run apart (``make demo`` / ``make demo-socratic``), each with its own summary file
SUITES = ("all", "scotd", "socratic")
SUMMARY_STEM = {"all": "summary", "scotd": "summary", "socratic": "socratic_summary"}
# what reproduce passes every notebook itself, and what to use instead of -p for each
RESERVED = {"profile": "--profile", "output_dir": "--output-dir", "name": "--profile",
            "overrides": "one -p per profile setting (-p max_steps=100)"}
# environment variables naming directories the notebooks' kernels read: made absolute before they start
PATH_VARIABLES = ("SCOTD_DATA_DIR", "SCOTD_RUNS_DIR", "SCOTD_CACHE_DIR")
# a parameter's YAML text and the values in it: far above any setting, far below what hurts
MAX_PARAMETER_CHARS = 65_536
MAX_PARAMETER_ITEMS = 10_000
# the kernel's own log (ipykernel's "running over TCP without encryption" on every start): errors only;
# what the notebook's code prints goes to the executed notebook, not to this log
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


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
    claims_made: bool = False                        # claims.csv computed by this run (an older one is not shown)
    suite: str = "all"
    facts: dict | None = None                        # scotd_kit.doctor's facts; None: asked when written

    @property
    def summary_path(self) -> Path:
        return self.output_dir / f"{SUMMARY_STEM[self.suite]}.md"

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if not r.ok]


class UnknownNotebookError(FileNotFoundError):
    """A selected name or glob matches no notebook; the message lists the names there are."""


class ParameterError(ValueError):
    """A parameter refused before any notebook runs; ``name`` is the parameter."""

    def __init__(self, name: str, message: str):
        super().__init__(f"-p {name}: {message}")
        self.name = name


def list_notebooks(notebooks_dir: Path | None = None, select: list[str] | None = None,
                   suite: str = "all") -> list[Path]:
    notebooks_dir = find_notebooks_dir(notebooks_dir)
    paths = sorted(p for p in Path(notebooks_dir).glob("*.ipynb")
                   if not p.name.startswith("_") and in_suite(p.stem, suite))
    if select:
        # every name must match: a typo would otherwise silently run fewer notebooks
        unknown = [s for s in select if not any(fnmatch.fnmatch(p.stem, s) or p.stem == s for p in paths)]
        if unknown:
            raise UnknownNotebookError(f"no notebook in {notebooks_dir} matches {', '.join(map(repr, unknown))}; "
                                       f"known notebooks: {', '.join(p.stem for p in paths) or '(none)'}")
        paths = [p for p in paths if any(fnmatch.fnmatch(p.stem, s) or p.stem == s for s in select)]
    if not paths:
        raise NotebooksNotFoundError(f"no notebook of the {suite!r} suite in {notebooks_dir}")
    return paths


def notebook_parameters(path: Path) -> dict:
    """The names the notebook's ``parameters`` cell assigns, each with its default (None where it is
    not a literal)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cell = next((c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    try:
                        out[t.id] = ast.literal_eval(node.value) if node.value is not None else None
                    except ValueError:
                        out[t.id] = None
    return out


class _NoAliases(Exception):
    pass


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """YAML without aliases: ``*a`` repeats a node without repeating its text, so a few hundred bytes
        unfold into gigabytes wherever the value is walked or printed."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise _NoAliases()
            return super().compose_node(parent, index)

    return Loader


def parse_parameter(text: str) -> tuple[str, object]:
    """``name=value`` with the value read as YAML (so JSON too), as papermill's ``-p`` / ``-y`` read them:
    ``max_steps=100`` -> 100, ``tasks=[commonsense_qa, openbookqa]`` -> a list, ``teacher=replay:dir`` -> str."""
    import yaml

    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"a parameter is NAME=VALUE, not {text!r}")
    name = name.strip()
    if not name.isidentifier():
        raise ParameterError(name, "is not a parameter name (a letter or _, then letters, digits or _)")
    if len(value) > MAX_PARAMETER_CHARS:
        raise ParameterError(name, f"the value has {len(value):,} characters; at most {MAX_PARAMETER_CHARS:,}")
    try:
        parsed = yaml.load(value, Loader=_yaml_loader())
    except _NoAliases:
        raise ParameterError(name, "YAML aliases (*name) are not accepted; write the value out") from None
    except yaml.YAMLError:
        parsed = value
    return name, parsed


def _strings(name: str, value):
    """Every key and string in ``value`` (walked with a budget: a structure that shares its parts can be
    exponentially larger than it looks)."""
    stack, seen = [value], 0
    while stack:
        v = stack.pop()
        seen += 1
        if seen > MAX_PARAMETER_ITEMS:
            raise ParameterError(name, f"the value holds more than {MAX_PARAMETER_ITEMS:,} items")
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set)):
            stack.extend(v)
        else:
            yield str(v)


def check_secrets(named: dict) -> None:
    """Refuse secrets as parameters: papermill writes parameters into the executed notebook."""
    secret = [k for k, v in named.items()
              if _SECRET.search(str(k)) or any(_CREDENTIAL_URL.search(s) for s in _strings(str(k), v))]
    if secret:
        raise ValueError(f"refusing to pass {secret} as notebook parameters: papermill writes parameters into "
                         f"the executed notebook; set secrets as environment variables instead")


def split_parameters(parameters: dict | None) -> dict:
    """Profile settings go into the notebooks' ``overrides`` dict; other parameters stay as they are."""
    from .profiles import profile_fields

    parameters = dict(parameters or {})
    fields = profile_fields()
    overrides = dict(parameters.pop("overrides", None) or {})
    overrides.update({k: parameters.pop(k) for k in list(parameters) if k in fields})
    return {**parameters, **({"overrides": overrides} if overrides else {})}


def _plain(value):
    """``value`` as papermill writes it into a notebook: tuples as lists (it would write a tuple as a string)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_profile_settings(profile: str, settings: dict, declared: dict) -> dict:
    """The profile settings as the notebooks will hold them (lists as tuples, paths absolute), checked
    with each notebook's own settings under them, as ``stages.settings`` builds its profile."""
    from .profiles import SettingError, get_profile

    takers = [stem for stem, names in declared.items() if "overrides" in names]
    if settings and not takers:
        raise ParameterError(next(iter(settings)), "no selected notebook takes profile settings (the Socratic "
                                                   "notebooks take theirs as one dict: -p 'socratic={...}')")
    try:
        base = get_profile(profile)
        for stem in takers or [None]:
            get_profile(base, **{**base.for_notebook(stem), **settings})
        checked = get_profile(profile, **settings)
    except SettingError as e:
        raise ParameterError(e.name, str(e).removeprefix(f"{e.name}: ")) from None
    return {k: getattr(checked, k) for k in settings}


def _check_notebook_parameter(profile: str, name: str, value, defaults: list) -> object:
    """A parameter the notebooks declare: the type of their default, a known task, Socratic settings."""
    from .profiles import absolute_path, closest

    typed = [d for d in defaults if d is not None]
    if value is not None and typed and not any(isinstance(value, type(d)) for d in typed):
        raise ParameterError(name, f"expected {type(typed[0]).__name__} (the notebook's default is {typed[0]!r}), "
                                   f"got {type(value).__name__} {value!r}")
    if name == "task":
        from .tasks import list_tasks

        if value not in list_tasks():
            hint = "".join(f" (did you mean {c!r}?)" for c in closest(str(value), list_tasks())[:1])
            raise ParameterError(name, f"unknown task {value!r}{hint}; known: {', '.join(list_tasks())}")
    if name == "socratic" and value:
        from .socratic.settings import socratic_settings

        value = dict(value)
        if isinstance(value.get("teacher"), str):
            value["teacher"] = absolute_path(value["teacher"])
        try:
            socratic_settings(profile, **value)
        except (KeyError, TypeError, ValueError) as e:
            raise ParameterError(name, str(e).strip("'\"")) from None
    return value


def check_parameters(profile: str, parameters: dict | None, notebooks: list[Path]) -> dict[str, dict]:
    """Every parameter checked before any notebook runs; returns notebook stem -> the parameters it is
    passed (``overrides`` and the names its parameters cell declares).  Errors are a
    :class:`ParameterError` naming the parameter (a ValueError for secrets)."""
    from .profiles import PROFILES, closest, profile_fields

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    parameters = dict(parameters or {})
    for name in parameters:
        if not isinstance(name, str) or not name.isidentifier():
            raise ParameterError(str(name), "is not a parameter name (a letter or _, then letters, digits or _)")
        if name in RESERVED:
            raise ParameterError(name, f"is set by reproduce itself; use {RESERVED[name]}")
    check_secrets(parameters)
    declared = {p.stem: notebook_parameters(p) for p in notebooks}
    fields = profile_fields()
    taken = {n for names in declared.values() for n in names} - set(RESERVED)
    for name in parameters:
        if name not in fields and name not in taken:
            hint = "".join(f"; did you mean {c!r}?" for c in closest(name, (fields | taken) - set(RESERVED))[:1])
            raise ParameterError(name, f"no profile setting or parameter of the selected notebooks has this name"
                                       f"{hint} (profile settings: {', '.join(sorted(fields - set(RESERVED)))}; "
                                       f"notebook parameters: {', '.join(sorted(taken - fields)) or 'none'})")
    overrides = _check_profile_settings(profile, {k: v for k, v in parameters.items() if k in fields}, declared)
    others = {k: _check_notebook_parameter(profile, k, v, [d[k] for d in declared.values() if k in d])
              for k, v in parameters.items() if k not in fields}
    passed = {**others, **({"overrides": overrides} if overrides else {})}
    return {stem: _plain({k: v for k, v in passed.items() if k in names}) for stem, names in declared.items()}


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


def check_not_source(executed_dir: Path, notebooks_dir: Path) -> None:
    """The executed copies must never land on the notebooks they were made from."""
    if Path(executed_dir).resolve() == Path(notebooks_dir).resolve():
        raise ValueError(f"--executed-dir {executed_dir} is the notebooks' own directory: the executed copies "
                         f"would overwrite the source notebooks; pick another directory")


@contextlib.contextmanager
def absolute_environment(cwd: Path):
    """The kit's directory variables made absolute (against ``cwd``) for the kernels started inside, so a
    relative one means the same directory to every notebook and in every record."""
    before = {k: os.environ.get(k) for k in PATH_VARIABLES}
    for k, v in before.items():
        if v:
            os.environ[k] = os.path.normpath(Path(cwd, Path(v).expanduser()))
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_notebook(path: Path, profile: str, output_dir: Path, executed_dir: Path,
                 parameters: dict | None = None, kernel: str = "python3", cwd: str | Path | None = None) -> NotebookRun:
    """Execute one notebook with ``parameters`` (as :func:`check_parameters` passes them: profile settings
    already inside ``overrides``) in ``cwd`` (default: the working directory, where relative paths are read)."""
    import papermill

    params = {**split_parameters(parameters), "profile": profile, "output_dir": str(Path(output_dir).resolve())}
    check_secrets({**params, **params.get("overrides", {})})
    executed = Path(executed_dir) / path.name
    if executed.exists() and executed.resolve() == Path(path).resolve():
        raise ValueError(f"{executed} is the notebook itself; the executed copy would overwrite it")
    executed.parent.mkdir(parents=True, exist_ok=True)
    # papermill rewrites its output after every cell: it writes beside the executed copy, which is replaced
    # only by a whole notebook (a full disk must not leave half a notebook where the last good one was)
    partial = executed.with_name(f".{executed.stem}.partial{executed.suffix}")   # papermill wants .ipynb
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(partial), parameters=params, kernel_name=kernel,
                                   cwd=str(cwd or Path.cwd()), progress_bar=False, extra_arguments=KERNEL_ARGUMENTS)
        ok, error = True, ""
    except Exception as e:  # report and carry on with the other notebooks
        ok, error = False, f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"[:500]
    seconds = time.perf_counter() - start
    if not keep_whole(partial, executed):
        return NotebookRun(path.stem, False, seconds, "", "; ".join(filter(None, [
            error, f"the executed copy {executed} could not be written whole; none is kept"])))
    return NotebookRun(path.stem, ok, seconds, str(executed), error)


def keep_whole(partial: Path, executed: Path) -> bool:
    """Move ``partial`` onto ``executed`` if it is a whole notebook; otherwise remove both (an older executed
    copy would pass for this run's) and say False."""
    try:
        json.loads(partial.read_text(encoding="utf-8"))["cells"]
        os.replace(partial, executed)
        return True
    except (OSError, ValueError, KeyError, TypeError):
        partial.unlink(missing_ok=True)
        executed.unlink(missing_ok=True)
        return False


def reproduce(profile: str = "demo", select: list[str] | None = None, output_dir: str | Path = "figures",
              executed_dir: str | Path | None = None, notebooks_dir: Path | None = None,
              parameters: dict | None = None, progress: bool = True, claims: bool | None = None,
              suite: str = "all", kernel: str = "python3") -> Summary:
    """Run the selected notebooks (all of ``suite`` by default) and write ``summary.md`` / ``summary.csv``
    (``socratic_summary.*`` for the Socratic suite) and ``reproduce.json`` (what ran, where, on what).

    Relative paths (``output_dir``, ``executed_dir``, ``replay:DIR``, ``$SCOTD_DATA_DIR``...) are read
    against the working directory, which is also the notebooks'.  ``claims``: also check SCoTD's central
    claims on the notebooks' runs and write ``claims.csv`` (:mod:`scotd_kit.claims`); ``None``: when every
    SCoTD notebook runs under the ``smoke`` or ``demo`` profile (there the students they need are the
    notebooks' own, so nothing new is trained)."""
    from tqdm.auto import tqdm

    cwd = Path.cwd()
    out = (cwd / output_dir / profile).resolve()
    executed = (cwd / executed_dir).resolve() if executed_dir else cwd / "runs" / "executed" / profile
    notebooks_dir = find_notebooks_dir(notebooks_dir)
    notebooks = list_notebooks(notebooks_dir, select, suite)
    check_not_source(executed, notebooks_dir)
    passed = check_parameters(profile, parameters, notebooks)
    overrides = next((p["overrides"] for p in passed.values() if "overrides" in p), {})
    socratic = next((p["socratic"] for p in passed.values() if p.get("socratic")), {})
    summary = Summary(profile, out, overrides=overrides, socratic=dict(socratic), suite=suite)
    check_writable(out, executed)
    with absolute_environment(cwd):
        summary.facts = machine_facts(summary, notebooks_dir, executed)
        bar = tqdm(notebooks, desc=f"reproduce [{profile}]", disable=not progress)
        for path in bar:
            bar.set_postfix_str(path.stem)
            set_aside_cells(out, path.stem)
            run = run_notebook(path, profile, out, executed, passed[path.stem], kernel=kernel, cwd=cwd)
            summary.runs.append(run)
            status = "ok" if run.ok else f"FAILED ({run.error})" + (f"; see {run.executed}" if run.executed else "")
            bar.write(f"{path.stem}: {status} in {run.seconds:.0f}s")
        if claims if claims is not None else (not select and suite != "socratic" and profile in ("smoke", "demo")):
            summary.claims_seconds = write_claims(summary)
            summary.claims_made = True
            if progress:
                bar.write(f"claims: {summary.claims_seconds:.0f}s (what their students printed: "
                          f"{summary.output_dir / 'claims.log'})")
    write_summary(summary)
    write_record(summary, passed)
    return summary


def machine_facts(summary: Summary, notebooks_dir: Path | None = None, executed_dir: Path | None = None) -> dict:
    """:mod:`scotd_kit.doctor`'s facts for this run (never an error: a summary is written regardless)."""
    from . import doctor

    try:
        return doctor.facts(summary.profile, summary.overrides, output_dir=summary.output_dir,
                            notebooks_dir=notebooks_dir, executed_dir=executed_dir)
    except Exception as e:  # noqa: BLE001 -- the facts describe the run; their absence must not stop it
        return {"error": f"{type(e).__name__}: {e}"}


def write_record(summary: Summary, passed: dict) -> None:
    """``reproduce.json`` beside the summary: the profile, the parameters each notebook got (paths
    absolute), the notebooks' outcomes and the machine's facts."""
    record = {"profile": summary.profile, "suite": summary.suite, "output_dir": str(summary.output_dir),
              "parameters": passed, "runs": [r.__dict__ for r in summary.runs], "facts": summary.facts}
    atomic_write_text(summary.output_dir / f"{SUMMARY_STEM[summary.suite]}.reproduce.json",
                      json.dumps(record, indent=1, default=str) + "\n")


def write_claims(summary: Summary) -> float:
    """``claims.csv`` / ``claims.md`` of the profile's runs under the summary's output dir; the seconds it took."""
    from . import claims as claims_mod
    from .stages import settings

    start = time.perf_counter()
    log = summary.output_dir / "claims.log"
    try:
        # students trained for a claim print progress bars and losses: they go to claims.log, as a notebook's go to
        # its executed copy, and the command's own output stays one line per step
        with open(log, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            claims_mod.write(settings(summary.profile, **summary.overrides), summary.output_dir)
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
    if summary.suite == "socratic":
        return socratic_header(summary, base)
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
        lines += socratic_lines(summary)
    return "\n".join(lines) + "\n\n"


def socratic_header(summary: Summary, base) -> str:
    """The Socratic suite's header: what its own settings run (never the SCoTD profile's description)."""
    from .socratic.settings import socratic_settings

    try:
        s = socratic_settings(summary.profile, **summary.socratic)
    except (KeyError, TypeError, ValueError) as e:
        return f"**Socratic settings**: not read ({e}).\n\n"
    ran = ", ".join(run if run == column else f"{run} standing in for {column}" for column, run in s.tasks)
    what = (f"**What this is**: Socratic CoT (answer-only, CoT, unified and iterative students) under profile "
            f"`{summary.profile}`: tasks {ran}; students {', '.join(s.sizes)} ({s.method}); teacher "
            f"decompositions: {s.teacher or 'gold only'}.")
    return "\n".join([what, f"**Needs**: {base.needs}.", *socratic_lines(summary)]) + "\n\n"


def socratic_lines(summary: Summary) -> list[str]:
    from .socratic.settings import differences_from_paper as socratic_differences, socratic_settings

    lines = []
    if summary.socratic:
        lines.append("**Socratic settings overridden**: " +
                     ", ".join(f"`{k}={v!r}`" for k, v in summary.socratic.items()) + ".")
    try:
        s = socratic_settings(summary.profile, **summary.socratic)
    except (KeyError, TypeError, ValueError) as e:
        return lines + [f"**Socratic settings**: not read ({e})."]
    differs = socratic_differences(summary.profile, s, *s.sizes)
    # the paper released no code: no Socratic cell is compared with its numbers, whatever the settings
    # never empty: the paper's Socratic hyperparameters are not known, so they are always the kit's own
    lines.append("**Socratic settings that differ from the paper's or are the kit's own**: " + "; ".join(differs) +
                 ". Socratic numbers are never a reproduction: quoted figures are attributed reference points.")
    return lines


def summary_title(summary: Summary) -> str:
    """Says what ran: a reproduction only where every setting is the paper's, else a run of the profile."""
    from .profiles import PROFILES, differences_from_paper, get_profile

    suite = {"socratic": "Socratic CoT notebooks", "scotd": "SCoTD notebooks"}.get(summary.suite, "Notebooks")
    # the Socratic notebooks never run the paper's own teacher and students, so a page holding them is no reproduction
    socratic_ran = summary.suite == "socratic" or any(r.name.startswith("socratic_") for r in summary.runs)
    if not socratic_ran and summary.profile in PROFILES:
        try:
            prof = get_profile(summary.profile, **summary.overrides)
        except (TypeError, ValueError):
            prof = PROFILES[summary.profile]
        if not differences_from_paper(prof):
            return f"# Reproduction summary: profile `{summary.profile}`\n\n"
    return f"# {suite}, profile `{summary.profile}`: a run at this profile's scale, not a reproduction\n\n"


def scale_notes(summary: Summary) -> str:
    """What the profile's figures show and do not show at its scale, for the notebooks this run ran."""
    from .profiles import PROFILES

    notes = getattr(PROFILES.get(summary.profile), "notebook_notes", {})
    ran = [r.name for r in summary.runs if r.name in notes]
    if not ran:
        return ""
    return ("## What the figures show at this scale\n\n" + "".join(f"- **{name}**: {notes[name]}\n" for name in ran)
            + "\n")


def set_aside_cells(output_dir: Path, stem: str) -> None:
    """Move a notebook's cells from an earlier run to ``STEM.cells.previous.json`` before it runs again: the
    summary must show this run's numbers or none, and the earlier ones are kept, not lost."""
    cells = Path(output_dir) / f"{stem}.cells.json"
    if cells.exists():
        os.replace(cells, cells.with_name(f"{stem}.cells.previous.json"))


def this_runs_cells(summary: Summary) -> list[dict]:
    """The cells the notebooks that ran and finished in this run wrote (a failed notebook's are left out)."""
    rows = []
    for run in summary.runs:
        path = summary.output_dir / f"{run.name}.cells.json"
        if run.ok and in_suite(path.name, summary.suite) and path.exists():
            rows += json.loads(path.read_text())
    return rows


def write_summary(summary: Summary) -> None:
    """This run's cells (:func:`this_runs_cells`) and claims into summary.csv / summary.md."""
    import pandas as pd

    out = summary.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cells = this_runs_cells(summary)
    frame = pd.DataFrame(cells)
    atomic_write_text(summary.summary_path.with_suffix(".csv"), frame.to_csv(index=False))
    runs = pd.DataFrame([{"notebook": r.name, "ok": r.ok, "seconds": round(r.seconds, 1), "error": r.error}
                         for r in summary.runs])
    total = sum(r.seconds for r in summary.runs) + summary.claims_seconds
    claims_md = out / "claims.md"
    claims = ("## SCoTD's central claims at this profile's scale (claims.csv)\n\n" + claims_md.read_text() + "\n"
              if summary.claims_made and claims_md.exists() and summary.suite != "socratic" else "")
    from .doctor import summary_block

    facts = summary.facts if summary.facts is not None else machine_facts(summary)
    text = (summary_title(summary) + summary_block(facts) + claims +
            scale_notes(summary) +
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
