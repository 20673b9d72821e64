import pytest

from scotd_kit import paper
from scotd_kit.experiments import settings_hash
from scotd_kit.profiles import PROFILES, get_profile
from scotd_kit.report import Cell, cells_frame, markdown_table
from scotd_kit.reproduce import run_notebook


def test_diff_only_where_the_papers_task_ran_under_a_paper_profile():
    demo = Cell("nb", "Table 2(b)", "full / SCoTD", "commonsense_qa", 55.0, 67.0, "demo", "demo_compare")
    assert demo.diff is None and "demo_compare stands in for commonsense_qa" in demo.note
    real = Cell("nb", "Table 2(b)", "full / SCoTD", "commonsense_qa", 60.0, 67.0, "paper", "commonsense_qa")
    assert real.diff == -7.0 and real.note == ""
    frame = cells_frame([demo, real])
    assert list(frame["diff"].isna()) == [True, False]
    assert "| nb | Table 2(b) |" in markdown_table(frame)


def test_paper_tables_hold_the_verified_numbers():
    assert paper.TABLE_2B[("full", "SCoTD")] == {"commonsense_qa": 67.0, "quarel": 83.8, "openbookqa": 67.0}
    assert paper.TABLE_3B[("openbookqa", "SC")][-1] == 57.8
    assert paper.TABLE_2A[("random", "")]["quarel"] == 50.0


def test_profiles_and_overrides():
    assert set(PROFILES) == {"smoke", "demo", "colab", "paper"}
    assert get_profile("paper").n_cots == 30 and get_profile("paper").learning_rate == 2e-5
    assert get_profile("demo", n_cots=4).n_cots == 4
    assert get_profile("demo").task("commonsense_qa") == "demo_arith"    # the teacher has signal only there
    assert get_profile("smoke").task("commonsense_qa") == "demo_compare"
    assert get_profile("paper").task("commonsense_qa") == "commonsense_qa"
    with pytest.raises(KeyError, match="known: smoke"):
        get_profile("huge")


def test_settings_hash_is_stable_and_sensitive():
    a = settings_hash("student", {"n": 30, "tasks": ["x"]})
    assert a == settings_hash("student", {"tasks": ["x"], "n": 30})
    assert a != settings_hash("student", {"n": 5, "tasks": ["x"]})


def test_secrets_are_never_notebook_parameters(tmp_path):
    with pytest.raises(ValueError, match="environment variables"):
        run_notebook(tmp_path / "x.ipynb", "smoke", tmp_path, tmp_path, parameters={"openai_api_key": "sk-x"})
