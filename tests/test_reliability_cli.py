"""Reliability (docs/reliability.md), defect 10: the command line explains itself."""
import os

import pytest

from scotd_kit import __version__, cli
from scotd_kit.reproduce import list_notebooks


def test_version(capsys):
    with pytest.raises(SystemExit) as end:
        cli.main(["--version"])
    assert end.value.code == 0 and __version__ in capsys.readouterr().out


def test_an_unknown_notebook_lists_the_known_ones_without_a_traceback(tmp_path, capsys):
    code = cli.main(["reproduce", "--profile", "smoke", "no_such_notebook", "--output-dir", str(tmp_path / "o"),
                     "--executed-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2 and "'no_such_notebook'" in err and "Traceback" not in err
    names = [p.stem for p in list_notebooks()]
    assert names and all(n in err for n in names)
    assert not (tmp_path / "e").exists()                     # nothing ran


def test_one_typo_among_good_names_is_refused_too():
    names = [p.stem for p in list_notebooks()]
    with pytest.raises(FileNotFoundError, match="'nope'"):
        list_notebooks(select=[names[0], "nope"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_output_dir_is_refused_before_any_notebook_runs(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code = cli.main(["reproduce", "--profile", "smoke", "--output-dir", str(ro),
                         "--executed-dir", str(tmp_path / "e")])
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to" in err and str(ro) in err
    assert not list((tmp_path / "e").glob("*.ipynb"))


def test_an_output_dir_that_is_a_file_is_refused_before_any_notebook_runs(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")
    code = cli.main(["reproduce", "--profile", "smoke", "--output-dir", str(blocker),
                     "--executed-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to" in err
    assert not list((tmp_path / "e").glob("*.ipynb"))


# --- -p parameters: checked up front with the pipeline's own limits --------------------------------------

@pytest.fixture
def no_kernel(monkeypatch):
    """Every refusal below must come before the first notebook starts."""
    from scotd_kit import reproduce as rep

    def refuse(path, *a, **kw):
        raise AssertionError(f"a kernel was started for {path}")

    monkeypatch.setattr(rep, "run_notebook", refuse)


def _reproduce(tmp_path, *args):
    return cli.main(["reproduce", "--profile", "smoke", "00_quickstart", *args, "--output-dir", str(tmp_path / "o"),
                     "--executed-dir", str(tmp_path / "e")])


@pytest.mark.parametrize("parameter, option", [("output_dir=/tmp/elsewhere", "--output-dir"),
                                               ("profile=paper", "--profile"), ("name=paper", "--profile"),
                                               ("overrides={max_steps: 1}", "-p max_steps=100")])
def test_the_names_reproduce_passes_itself_cannot_be_overridden(parameter, option, tmp_path, capsys, no_kernel):
    """Before: -p output_dir / profile won over reproduce's own (cells outside --output-dir, a `paper` run
    summarised as `smoke`)."""
    assert _reproduce(tmp_path, "-p", parameter) == 2
    err = capsys.readouterr().err
    assert f"-p {parameter.split('=')[0]}: is set by reproduce itself" in err and option in err


@pytest.mark.parametrize("parameter", [
    "eval_limit=-2",                    # evaluated 198 of 200 examples (a slice [:-2])
    "eval_limit=0",                     # n=0 and a NaN accuracy
    "train_limit=0",
    "per_device_train_batch_size=0",    # ZeroDivisionError mid-run
    "seed=-1",                          # numpy's ValueError in the kernel
    "seed=4294967296",
    "max_steps=1000000000000",          # the schedule grew memory 25 MB/s
    "max_steps=0",
    "grid_seeds=[0, -1]",
    "n_grid=[0]",
    "fractions=[0, 1]",
    "learning_rate=.nan",
    "sc_k=true",
])
def test_values_past_the_pipelines_limits_exit_2_before_any_notebook(parameter, tmp_path, capsys, no_kernel):
    assert _reproduce(tmp_path, "-p", parameter) == 2
    err = capsys.readouterr().err
    assert f"-p {parameter.split('=')[0]}:" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()


def test_the_training_schedule_is_bounded_across_settings(tmp_path, capsys, no_kernel):
    from scotd_kit.profiles import MAX_SCHEDULED_EXAMPLES

    steps = MAX_SCHEDULED_EXAMPLES // 32 + 1         # within MAX_STEPS, but x 32 examples past what fits
    assert _reproduce(tmp_path, "-p", f"max_steps={steps}", "-p", "per_device_train_batch_size=32") == 2
    assert "-p max_steps:" in capsys.readouterr().err


BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n")


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys, no_kernel):
    """Before: 443 bytes of aliases took the secret check to 2.5 GB and a MemoryError."""
    import time

    start = time.perf_counter()
    assert _reproduce(tmp_path, "-p", "socratic={" + BOMB.strip().replace(chr(10), ", ") + "}") == 2
    assert "-p socratic: YAML aliases" in capsys.readouterr().err
    assert time.perf_counter() - start < 5


def test_a_shared_structure_given_from_python_is_refused_by_its_size(tmp_path):
    from scotd_kit.reproduce import ParameterError, check_secrets

    value = ["x"] * 9
    for _ in range(8):
        value = [value] * 9                  # 9**9 strings, as the alias bomb unfolds, sharing their parts
    with pytest.raises(ParameterError, match="more than"):
        check_secrets({"socratic": {"sizes": value}})


def test_the_executed_dir_can_never_be_the_source_notebooks(tmp_path, capsys, no_kernel):
    """Before: --executed-dir notebooks/ overwrote the source notebooks with their executed copies."""
    import hashlib

    from scotd_kit import reproduce as reproduce_module

    source = list_notebooks()[0].parent
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.glob("*.ipynb")}
    code = cli.main(["reproduce", "--profile", "smoke", "00_quickstart", "--output-dir", str(tmp_path / "o"),
                     "--executed-dir", str(source)])
    assert code == 2 and "overwrite the source notebooks" in capsys.readouterr().err
    with pytest.raises(ValueError, match="overwrite"):                # through another spelling of it too
        reproduce_module.check_not_source(source / "." / ".." / source.name, source)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.glob("*.ipynb")} == before
