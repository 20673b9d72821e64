import pytest

from scotd_kit import paper
from scotd_kit.runs import fingerprint
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


def test_the_run_fingerprint_is_stable_and_sensitive():
    a = fingerprint("student", {"n": 30, "tasks": ["x"]})
    assert a == fingerprint("student", {"tasks": ["x"], "n": 30})
    assert a != fingerprint("student", {"n": 5, "tasks": ["x"]})


def test_secrets_are_never_notebook_parameters(tmp_path):
    with pytest.raises(ValueError, match="environment variables"):
        run_notebook(tmp_path / "x.ipynb", "smoke", tmp_path, tmp_path, parameters={"openai_api_key": "sk-x"})


def test_figures_name_the_stand_in_task_and_draw_no_paper_bar_over_it():
    import pandas as pd

    from scotd_kit import plots

    frame = cells_frame([Cell("nb", "Table 2(a)", "none", "commonsense_qa", 5.0, 20.5, "demo", "demo_arith"),
                         Cell("nb", "Table 2(a)", "none", "quarel", 50.0, 50.0, "paper", "quarel")])
    assert plots._task_label(frame, "column", "commonsense_qa") == "demo_arith (stand-in for commonsense_qa)"
    assert plots._task_label(frame, "column", "quarel") == "quarel"
    ref = plots._comparable_paper(frame.assign(ours=frame["paper"]), "ours")
    assert ref["ours"].isna().tolist() == [True, False]      # no hollow bar at 20.5 over demo_arith
    fig = plots.grouped_bars(frame, x="row", hue="column", y="ours", title="t", paper=frame.assign(ours=frame["paper"]))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "demo_arith (stand-in for commonsense_qa)", "quarel"]
    assert fig.axes[0].get_title() == "t (hollow: paper)"               # quarel's bar is the paper's own
    fig = plots.grouped_bars(frame.iloc[:1], x="row", hue="column", y="ours", title="t",
                             paper=frame.iloc[:1].assign(ours=frame["paper"]), chance={"commonsense_qa": 8.0})
    ax = fig.axes[0]
    assert ax.get_title() == "t"                                         # no paper bar drawn, none claimed
    assert "chance" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert [seg[0][1] for seg in ax.collections[-1].get_segments()] == [8.0]
    curve = pd.DataFrame({"column": ["commonsense_qa"] * 2, "task_run": ["demo_arith"] * 2, "cots": [1, 4],
                          "line": ["SCoTD"] * 2, "ours": [15.0, 29.0]})
    fig = plots.panels(curve, panel="column", x="cots", hue="line", y="ours", xlabel="N", title="t",
                       hlines={"commonsense_qa": {"label-only": 5.0, "chance": 8.0, "missing": None}})
    ax = fig.axes[0]
    assert ax.get_title() == "demo_arith (stand-in for commonsense_qa)"
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()[1:]) == [5.0, 8.0]


def test_chance_is_one_over_the_labels_or_the_best_constant_answer():
    from scotd_kit import stages

    p = stages.settings("smoke")
    assert stages.chance(p, "commonsense_qa") == pytest.approx(100 / 3)        # demo_compare: (a), (b), (c)
    golds = [str(e.label) for e in stages.examples(p, "gsm8k")]
    best = max(golds.count(g) for g in golds)
    assert stages.chance(p, "gsm8k") == pytest.approx(100 * best / len(golds))   # numbers: the most common answer


def test_summary_titles_and_headers_say_what_ran(tmp_path):
    """Only the paper's own settings make a 'Reproduction summary'; the Socratic suite's header describes its
    own settings, never the SCoTD profile's description."""
    from scotd_kit.reproduce import Summary, write_summary

    write_summary(Summary("demo", tmp_path / "a", suite="scotd"))
    demo = (tmp_path / "a" / "summary.md").read_text()
    assert demo.startswith("# SCoTD notebooks, profile `demo`: a run at this profile's scale, not a reproduction")
    write_summary(Summary("paper", tmp_path / "b", suite="scotd"))
    assert (tmp_path / "b" / "summary.md").read_text().startswith("# Reproduction summary: profile `paper`")
    write_summary(Summary("demo", tmp_path / "c", suite="socratic"))
    soc = (tmp_path / "c" / "socratic_summary.md").read_text()
    assert soc.startswith("# Socratic CoT notebooks, profile `demo`")
    assert "SmolLM2-135M-Instruct teacher" not in soc and "demo_socratic standing in for gsm8k_socratic" in soc
    assert "never a reproduction" in soc
