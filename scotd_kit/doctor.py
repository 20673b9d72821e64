"""``scotd-kit doctor``: what the kit will do on this machine under a profile, and what is missing.

The facts: the device and its capability, the precision each role (teacher, student, evaluation)
runs in and why (:func:`scotd_kit.hardware.describe`), free memory, where data, corpora, runs and
outputs are read and written, the offline assets and their sha256, the versions of the libraries
the numbers depend on, and the Jupyter kernel the notebooks run in.  Each problem comes with its fix.
The same facts head every ``summary.md`` (:func:`summary_block`).
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "papermill", "ipykernel")
# the precision roles a profile asks for: the teacher's dtype, the student's TrainConfig precision; evaluation
# always takes the device's default
ROLES = ("teacher", "student", "evaluation")
GPU_PROFILES = ("colab", "paper")


def roles(profile) -> dict:
    """Role -> the precision the profile asks for it (None: the device's default)."""
    return {"teacher": profile.teacher_dtype, "student": profile.train_args.get("precision"), "evaluation": None}


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def declared_ranges() -> dict:
    """Package -> the version range scotd-kit's metadata declares for it (its tested range)."""
    from importlib import metadata

    try:
        requires = metadata.requires("scotd-kit") or []
    except metadata.PackageNotFoundError:
        return {}
    from packaging.requirements import Requirement

    out = {}
    for text in requires:
        req = Requirement(text)
        if req.specifier and (req.marker is None or req.marker.evaluate({"extra": ""})):
            out[req.name.lower()] = str(req.specifier)
    return out


def versions() -> dict:
    """Library -> {version, range, ok}; a library outside the declared range is not ok."""
    from packaging.specifiers import SpecifierSet

    ranges = declared_ranges()
    out = {"python": {"version": sys.version.split()[0], "range": "", "ok": True}}
    for lib in LIBRARIES:
        v = _version(lib)
        spec = ranges.get(lib, "")
        ok = v is None or not spec or SpecifierSet(spec).contains(v.split("+")[0], prereleases=True)
        out[lib] = {"version": v, "range": spec, "ok": ok}
    return out


def assets() -> list[dict]:
    """Each pinned offline asset: package, file, pinned sha256, and ok / missing / changed."""
    from . import assets as a

    out = []
    for entry in (a.SMOLLM2_GGUF, a.GPT2_VOCAB, a.GPT2_MERGES, a.MINILM_WEIGHTS):
        package, rel, sha = entry
        row = {"package": package, "file": rel, "sha256": sha, "path": "", "status": "ok", "fix": ""}
        try:
            row["path"] = str(a.asset(entry))
        except a.AssetError as e:
            row["status"] = "changed" if "differs" in str(e) else "missing"
            row["fix"] = a.INSTALL_HINT.get(package, "")
        out.append(row)
    return out


def _writable(d: Path) -> bool:
    probe = d
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK)


def corpora(profile) -> list[dict]:
    """The released-corpora directories the profile's teachers replay, and which task files they hold."""
    from .teachers.replay import RELEASED_FILES

    specs = [profile.teacher, profile.greedy_teacher or "", *profile.teachers.values()]
    out = []
    for spec in dict.fromkeys(s for s in specs if s.startswith("replay:")):
        path = Path(spec.split(":", 1)[1])
        tasks = [profile.task(t) for t in profile.tasks]
        files = {t: RELEASED_FILES[t] for t in tasks if t in RELEASED_FILES}
        present = [f for f in files.values() if path.is_file() or (path / f).is_file()]
        out.append({"path": str(path), "exists": path.exists(), "files": sorted(files.values()),
                    "present": sorted(present)})
    return out


def locations(profile, output_dir=None, notebooks_dir=None, executed_dir=None) -> dict:
    """Where this run reads and writes, absolute."""
    from .paths import NotebooksNotFoundError, cache_root, data_dir, find_notebooks_dir, runs_root

    runs = runs_root() / profile.name
    try:
        notebooks = str(find_notebooks_dir(notebooks_dir))
    except NotebooksNotFoundError as e:
        notebooks = f"missing: {e}"
    data = data_dir().absolute()
    out = Path(output_dir or Path("figures") / profile.name).absolute()
    return {"working_dir": str(Path.cwd()), "data": str(data), "data_exists": data.is_dir(),
            "runs": str(runs.absolute()), "runs_writable": _writable(runs), "cache": str(cache_root().absolute()),
            "output": str(out), "output_writable": _writable(out),
            "executed": str(Path(executed_dir or Path("runs") / "executed" / profile.name).absolute()),
            "notebooks": notebooks, "corpora": corpora(profile)}


def kernel() -> dict:
    """The Jupyter kernel ``python3`` the notebooks run in, and whether it is this interpreter's."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return {"name": "python3", "argv0": "", "same_environment": False, "error": "jupyter_client is not installed"}
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return {"name": "python3", "argv0": "", "same_environment": False, "error": "no kernel named python3"}
    argv0 = spec.argv[0] if spec.argv else ""
    # a bare "python" runs whatever is first on PATH: taken as this environment's (Colab, conda)
    same = not os.path.isabs(argv0) or Path(argv0).parent.absolute() == Path(sys.executable).parent.absolute()
    return {"name": "python3", "argv0": argv0, "same_environment": same, "error": ""}


def facts(profile: str = "demo", overrides: dict | None = None, *, output_dir=None, notebooks_dir=None,
          executed_dir=None) -> dict:
    """Everything :func:`render` and :func:`summary_block` print, as plain data."""
    from . import __version__, hardware
    from .profiles import get_profile

    prof = get_profile(profile, **(overrides or {}))
    with warnings.catch_warnings():     # an emulated request is reported below with its reason, not warned
        warnings.simplefilter("ignore")
        machine = hardware.describe(roles(prof))
    teacher_kind = prof.teacher.partition(":")[0] if prof.teacher.startswith(("replay:", "openai:")) else "local"
    return {"kit": __version__, "profile": prof.name, "machine": machine, "teacher_kind": teacher_kind,
            "method": prof.method, "precision_env": os.environ.get("SCOTD_PRECISION", ""),
            "offline": os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"),
            "locations": locations(prof, output_dir, notebooks_dir, executed_dir),
            "assets": assets(), "versions": versions(), "kernel": kernel()}


def problems(f: dict) -> list[tuple[str, str]]:
    """(problem, fix) for everything in ``f`` that stops or slows the profile here."""
    out = []
    m, loc = f["machine"], f["locations"]
    if f["profile"] in GPU_PROFILES and m["device"] != "cuda":
        out.append((f"profile {f['profile']} expects a GPU; this machine has none (device {m['device']})",
                    "use a GPU machine (Colab: Runtime > Change runtime type > T4 GPU), or --profile demo on a CPU"))
    for role in ROLES:
        choice = m.get(role, {})
        if role == "teacher" and f["teacher_kind"] != "local":
            continue                    # a replayed or remote teacher loads no model here
        if "error" in choice:
            out.append((f"{role}: {choice['error']}", f"ask for the device's default: -p {_role_setting(role)}"))
        elif "emulated" in choice.get("reason", ""):
            out.append((f"{role}: {choice['reason']}", f"ask for the device's default: -p {_role_setting(role)}"))
    for a in f["assets"]:
        if a["status"] != "ok":
            out.append((f"offline asset {a['package']}/{a['file']} is {a['status']}", a["fix"]))
    if loc["notebooks"].startswith("missing"):
        out.append(("the notebooks are missing",
                    "reinstall scotd-kit (its wheel carries them) or pass --notebooks-dir"))
    for c in loc["corpora"]:
        missing = sorted(set(c["files"]) - set(c["present"]))
        if missing:
            out.append((f"released corpora missing in {c['path']}: {', '.join(missing)}",
                        "put SCoTD's released *_30x.json there, or name their directory: -p teacher=replay:DIR"))
    if not loc["runs_writable"]:
        out.append((f"cannot write runs to {loc['runs']}", "point SCOTD_RUNS_DIR at a writable directory"))
    if not loc["output_writable"]:
        out.append((f"cannot write results to {loc['output']}", "pass --output-dir DIR"))
    if f["offline"] and not loc["data_exists"] and f["profile"] in GPU_PROFILES:
        out.append((f"HF_HUB_OFFLINE is set and {loc['data']} does not exist: the papers' datasets cannot be read",
                    "unset HF_HUB_OFFLINE, or point SCOTD_DATA_DIR at the datasets' original files"))
    for lib, v in f["versions"].items():
        if not v["ok"]:
            out.append((f"{lib} {v['version']} is outside the range scotd-kit is tested with ({v['range']})",
                        f"pip install '{lib}{v['range']}'"))
    if f["method"] == "qlora" and not f["versions"]["bitsandbytes"]["version"]:
        out.append(("method qlora needs bitsandbytes, which is not installed", "pip install 'scotd-kit[qlora]'"))
    k = f["kernel"]
    if k["error"]:
        out.append((f"Jupyter kernel: {k['error']}", f"{sys.executable} -m ipykernel install --user --name python3"))
    elif not k["same_environment"]:
        out.append((f"the Jupyter kernel python3 runs {k['argv0']}, not this environment's Python "
                    f"({sys.executable}): the notebooks may not find this scotd-kit",
                    f"{sys.executable} -m ipykernel install --user --name python3"))
    return out


def _role_setting(role: str) -> str:
    return {"teacher": "teacher_dtype=auto", "student": "'train_args={precision: auto}'"}.get(role, "(none)")


def _role_lines(f: dict) -> list[str]:
    m = f["machine"]
    lines = []
    for role in ROLES:
        c = m.get(role, {})
        note = " (no model loaded here: the teacher is a " + f["teacher_kind"] + ")" \
            if role == "teacher" and f["teacher_kind"] != "local" else ""
        lines.append(f"{role}: {c['device']} {c['precision']} -- {c['reason']}{note}" if "error" not in c
                     else f"{role}: error -- {c['error']}")
    return lines


def _location_lines(f: dict) -> list[str]:
    loc = f["locations"]
    lines = [f"working directory: {loc['working_dir']}",
             f"data: {loc['data']}" + ("" if loc["data_exists"] else " (absent: datasets come from the hub)"),
             f"runs: {loc['runs']}", f"output: {loc['output']}", f"executed notebooks: {loc['executed']}",
             f"notebooks: {loc['notebooks']}"]
    for c in loc["corpora"]:
        lines.append(f"released corpora: {c['path']} ({', '.join(c['present']) or 'none'} of "
                     f"{', '.join(c['files']) or 'none needed'})")
    return lines


def _machine_line(f: dict) -> str:
    m = f["machine"]
    if m["device"] == "cpu":
        where = f"CPU {m['name']} (torch capability {m['capability']})"
        memory = f"free memory {m['free_memory_gb']} GB"
    else:
        where = (f"{m['device']} {m['name']} ({m['capability']}, {m['gpus']} visible); CPU {m['cpu_model']} "
                 f"(torch capability {m['cpu_capability']})")
        memory = f"free {m['device']} memory {m['free_memory_gb']} GB"
    return f"{where}; native {', '.join(m['native'])}; {memory}"


def render(f: dict) -> str:
    """The terminal report of ``scotd-kit doctor``."""
    out = [f"scotd-kit {f['kit']}, profile {f['profile']}", "", "machine", "  " + _machine_line(f),
           "", "precision (role: device precision -- why)"]
    out += ["  " + line for line in _role_lines(f)]
    if f["precision_env"]:
        out.append(f"  SCOTD_PRECISION={f['precision_env']} sets the wish of every role that asks for none")
    out += ["", "locations"] + ["  " + line for line in _location_lines(f)]
    out += ["", "offline assets (sha256 pinned in scotd_kit/assets.py)"]
    out += [f"  {a['status']:8s} {a['package']}/{a['file']} {a['sha256'][:16]}... {a['path']}" for a in f["assets"]]
    out += ["", "versions"]
    out += [f"  {lib:13s} {v['version'] or 'not installed'}" + (f"  (required: {v['range']})" if v["range"] else "")
            + ("" if v["ok"] else "  OUTSIDE THE REQUIRED RANGE") for lib, v in f["versions"].items()]
    k = f["kernel"]
    out += ["", f"jupyter kernel python3: {k['argv0'] or k['error']}"]
    found = problems(f)
    out += ["", "problems" if found else "no problems found"]
    out += [f"  PROBLEM: {p}\n    fix: {fix}" for p, fix in found]
    return "\n".join(out) + "\n"


def summary_block(f: dict) -> str:
    """The facts as the markdown section that heads ``summary.md``."""
    if "error" in f:
        return f"## This machine\n\nThe machine's facts could not be read: {f['error']}\n\n"
    lines = [_machine_line(f), *(f"precision, {line}" for line in _role_lines(f)), *_location_lines(f),
             "offline assets: " + "; ".join(f"{a['package']}/{a['file']} {a['status']} (sha256 {a['sha256'][:12]})"
                                            for a in f["assets"]),
             "versions: " + ", ".join(f"{lib} {v['version'] or '-'}" for lib, v in f["versions"].items())]
    found = problems(f)
    lines += [f"**problem**: {p} -- fix: {fix}" for p, fix in found]
    return "## This machine (`scotd-kit doctor`)\n\n" + "".join(f"- {line}\n" for line in lines) + "\n"
