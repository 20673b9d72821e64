"""``scotd-kit``: the command line."""
from __future__ import annotations

import argparse
import sys


def _tasks(args) -> int:
    from .tasks import get_task, list_tasks

    for name in list_tasks():
        spec = get_task(name)
        print(f"{name:16s} {spec.answer_type:7s} splits: {', '.join(spec.splits):40s} {spec.description}")
    return 0


def _reproduce(args) -> int:
    from .reproduce import UnknownNotebookError, parse_parameter, reproduce

    try:
        parameters = dict(parse_parameter(p) for p in args.parameters)
        summary = reproduce(args.profile, args.notebooks or None, output_dir=args.output_dir,
                            executed_dir=args.executed_dir, parameters=parameters, suite=args.suite)
    except (UnknownNotebookError, PermissionError, ValueError) as e:   # a usage error: a sentence, not a traceback
        print(f"scotd-kit reproduce: error: {e}", file=sys.stderr)
        return 2
    print(f"summary: {summary.summary_path}")
    for run in summary.failed:
        print(f"FAILED {run.name}: {run.error} (executed copy: {run.executed})")
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="scotd-kit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the task specs").set_defaults(func=_tasks)
    rep = sub.add_parser("reproduce", help="run the notebooks through papermill under a profile")
    rep.add_argument("--profile", default="demo", choices=["smoke", "demo", "colab", "paper"])
    rep.add_argument("notebooks", nargs="*", help="notebook names or globs (default: all of the suite)")
    rep.add_argument("--suite", default="all", choices=["all", "scotd", "socratic"],
                     help="SCoTD's notebooks, the Socratic CoT ones, or both (make demo: scotd)")
    rep.add_argument("--output-dir", default="figures", help="tables and figures go to OUTPUT_DIR/PROFILE")
    rep.add_argument("--executed-dir", default=None, help="executed notebooks (default runs/executed/PROFILE)")
    rep.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], metavar="NAME=VALUE",
                     help="a notebook parameter or profile setting, the value read as YAML, as papermill's -p/-y "
                          "(e.g. -p max_steps=100 -p 'tasks=[commonsense_qa, openbookqa]' -p teacher=replay:DIR)")
    rep.set_defaults(func=_reproduce)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
