"""Issue 13, defect 10: the command line explains itself."""
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
