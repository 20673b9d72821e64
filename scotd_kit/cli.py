"""scotd-kit: the command line (``scotd-kit --help``)."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

DESCRIPTION = """\
Reproduce chain-of-thought distillation papers (SCoTD, Socratic CoT) with small students.

commands:
  doctor      what the kit will do on this machine (device, precision per role, memory, paths,
              offline assets, library versions) and what is missing, with the fix
  reproduce   run the papers' notebooks under a profile; write OUTPUT_DIR/PROFILE/summary.md
  notebooks   copy the notebooks into a directory, to open them in Jupyter or Colab
  tasks       list the task specs

examples:
  scotd-kit doctor --profile colab
  scotd-kit reproduce --profile smoke 00_quickstart     # one notebook in about a minute, offline
  scotd-kit reproduce --suite scotd                     # SCoTD's notebooks under the demo profile
  scotd-kit reproduce --profile colab -p teacher=replay:./scotd_corpora -p max_steps=500
  scotd-kit notebooks ./scotd_notebooks
"""

REPRODUCE_EPILOG = """\
profiles (--profile), and what each needs:
{profiles}

-p NAME=VALUE (repeatable; the value is read as YAML, as papermill's -p/-y):
  a profile setting (max_steps, tasks, teacher, eval_limit, ... : scotd_kit/profiles.py) or a parameter of
  the notebooks (task; socratic, the Socratic notebooks' settings as one dict). Every one is checked before
  the first notebook starts: unknown names, wrong types, values past the pipeline's limits, unknown tasks are
  errors (exit 2). null gives a setting its documented default: -p teacher_dtype=null (or auto) is the
  device's fastest native precision. Relative paths are read against this directory.
  profile, output_dir and overrides are set by reproduce itself (--profile, --output-dir).

examples:
  scotd-kit reproduce --profile smoke 00_quickstart
  scotd-kit reproduce --profile demo --suite scotd -p eval_limit=100
  scotd-kit reproduce --profile colab 'table2*' -p 'tasks=[commonsense_qa, quarel]' -p teacher=replay:./corpora
  scotd-kit reproduce --profile paper --suite socratic -p 'socratic={{sizes: [gpt2], train_steps: 200}}'
"""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written, and each option's default shown where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, [], False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _error(command: str, e: Exception) -> int:
    """A usage error: one sentence naming what is wrong, exit 2, no traceback."""
    text = str(e.args[1] if isinstance(e, PermissionError) and len(e.args) > 1 else
               e.args[0] if isinstance(e, KeyError) and e.args else e)
    print(f"scotd-kit {command}: error: {text}", file=sys.stderr)
    return 2


def _profiles_table() -> str:
    from .profiles import PROFILES

    import textwrap

    def wrap(text: str) -> str:
        return textwrap.fill(text, 100, initial_indent=" " * 9, subsequent_indent=" " * 9)[9:]

    return "\n".join(f"  {name:6s} {wrap(p.description + '.')}\n         needs: {wrap(p.needs + '.')}"
                     for name, p in PROFILES.items())


def _tasks(args) -> int:
    from .tasks import get_task, list_tasks

    rows = [(name, spec.answer_type, ", ".join(spec.splits), spec.description)
            for name in list_tasks() for spec in [get_task(name)]]
    widths = [max(len(r[i]) for r in rows + [("task", "answer", "splits", "")]) for i in range(3)]
    for row in [("task", "answer", "splits", "description"), *rows]:
        print("  ".join(f"{cell:{w}s}" for cell, w in zip(row[:3], widths)) + "  " + row[3])
    return 0


def _parse_parameters(texts: list[str]) -> dict:
    from .reproduce import parse_parameter

    return dict(parse_parameter(p) for p in texts)


def _reproduce(args) -> int:
    from .reproduce import reproduce

    try:
        parameters = _parse_parameters(args.parameters)
        kwargs = {"notebooks_dir": args.notebooks_dir} if args.notebooks_dir else {}
        summary = reproduce(args.profile, args.notebooks or None, output_dir=args.output_dir,
                            executed_dir=args.executed_dir, parameters=parameters, suite=args.suite, **kwargs)
    except (FileNotFoundError, PermissionError, ValueError) as e:
        return _error("reproduce", e)
    print(f"summary: {summary.summary_path}")
    for run in summary.failed:
        print(f"FAILED {run.name}: {run.error}" + (f" (executed copy: {run.executed})" if run.executed else ""))
    return 1 if summary.failed else 0


def _doctor(args) -> int:
    import json

    from . import doctor
    from .profiles import SettingError
    from .reproduce import ParameterError

    try:
        overrides = _parse_parameters(args.parameters)
        facts = doctor.facts(args.profile, overrides, output_dir=Path(args.output_dir) / args.profile,
                             notebooks_dir=args.notebooks_dir)
    except (ParameterError, SettingError, TypeError) as e:
        return _error("doctor", e)
    print(json.dumps({**facts, "problems": doctor.problems(facts)}, indent=1, default=str) if args.json
          else doctor.render(facts), end="" if not args.json else "\n")
    return 1 if doctor.problems(facts) else 0


def _notebooks(args) -> int:
    from .paths import find_notebooks_dir

    try:
        source = find_notebooks_dir(args.notebooks_dir)
    except FileNotFoundError as e:
        return _error("notebooks", e)
    target = Path(args.directory)
    if target.exists() and target.resolve() == source.resolve():
        return _error("notebooks", ValueError(f"{target} is where the notebooks are already"))
    paths = sorted(source.glob("*.ipynb"))
    clash = [p.name for p in paths if (target / p.name).exists()]
    if clash and not args.force:
        return _error("notebooks", FileExistsError(f"{target} already holds {', '.join(clash)}; --force replaces them"))
    target.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copyfile(p, target / p.name)
    print(f"{len(paths)} notebooks copied to {target.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import logging

    from . import __version__

    # bitsandbytes' import on every AVX512-BF16 CPU looks up an optional 4-bit CPU kernel through `kernels`, which
    # warns that it is absent or, offline, that it skipped the hub's publisher check: noise to anyone not running
    # QLoRA on a CPU
    for noisy in ("bitsandbytes", "kernels"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    parser = argparse.ArgumentParser(prog="scotd-kit", description=DESCRIPTION, formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of the commands above")
    sub.add_parser("tasks", formatter_class=_Help).set_defaults(func=_tasks)

    rep = sub.add_parser("reproduce", formatter_class=_Help,
                         description="Run the papers' notebooks under a profile and write OUTPUT_DIR/PROFILE/"
                                     "summary.md (the machine's facts, SCoTD's claims, every cell with its run).",
                         epilog=REPRODUCE_EPILOG.format(profiles=_profiles_table()))
    rep.add_argument("--profile", default="demo", choices=["smoke", "demo", "colab", "paper"],
                     help="the scale to run at (see below)")
    rep.add_argument("notebooks", nargs="*", help="notebook names or globs (default: all of the suite)")
    rep.add_argument("--suite", default="all", choices=["all", "scotd", "socratic"],
                     help="SCoTD's notebooks, the Socratic CoT ones, or both (make demo: scotd)")
    rep.add_argument("--output-dir", default="figures", help="tables and figures go to OUTPUT_DIR/PROFILE")
    rep.add_argument("--executed-dir", default=None,
                     help="executed notebooks (default: runs/executed/PROFILE; never the notebooks' own directory)")
    rep.add_argument("--notebooks-dir", default=None,
                     help="run the notebooks in this directory (default: those installed with the kit)")
    rep.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], metavar="NAME=VALUE",
                     help="a profile setting or notebook parameter, the value read as YAML (see below)")
    rep.set_defaults(func=_reproduce)

    doc = sub.add_parser("doctor", formatter_class=_Help,
                         description="The device and its capability, the precision each role (teacher, student, "
                                     "evaluation) will use and why, free memory, where data, corpora, runs and "
                                     "results are read and written, the offline assets and their sha256, library "
                                     "versions, the Jupyter kernel; a line for each problem with its fix. "
                                     "Exit 1 when there is a problem.")
    doc.add_argument("--profile", default="demo", choices=["smoke", "demo", "colab", "paper"])
    doc.add_argument("--output-dir", default="figures", help="as reproduce's")
    doc.add_argument("--notebooks-dir", default=None, help="as reproduce's")
    doc.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], metavar="NAME=VALUE",
                     help="a profile setting, as reproduce's (e.g. -p teacher_dtype=bf16)")
    doc.add_argument("--json", action="store_true", help="the facts as JSON")
    doc.set_defaults(func=_doctor)

    nbs = sub.add_parser("notebooks", formatter_class=_Help,
                         description="Copy the kit's notebooks into DIRECTORY (to open them in Jupyter or upload "
                                     "them to Colab); existing files are kept unless --force.")
    nbs.add_argument("directory")
    nbs.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    nbs.add_argument("--force", action="store_true", help="replace notebooks already there")
    nbs.set_defaults(func=_notebooks)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
