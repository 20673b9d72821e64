"""Reliability (docs/reliability.md), defect 1: a checkpoint cut short by a kill or a full disk never blocks resume."""
import json
import shutil

import pytest

pytest.importorskip("torch")
from scotd_kit import training  # noqa: E402

from .test_training import CrashAt, _Crash, _cfg, _instances  # noqa: E402


def test_resume_skips_half_written_checkpoints_and_matches_the_uninterrupted_run(tmp_path):
    insts, cfg = _instances(12), _cfg(max_steps=8, save_steps=2, save_total_limit=3)
    ref = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "ref", config=cfg, seed=3)
    with pytest.raises(_Crash):
        training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "cut", config=cfg, seed=3, callbacks=[CrashAt(7)])
    ckpts = tmp_path / "cut" / "checkpoints"
    (ckpts / "checkpoint-6" / "trainer_state.json").unlink()          # killed before Trainer wrote its state
    state = ckpts / "checkpoint-4" / "trainer_state.json"
    state.write_text(state.read_text()[:50])                           # the disk filled up while it was written
    with pytest.warns(UserWarning, match=r"checkpoint-6 is incomplete") as warned:
        res = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "cut", config=cfg, seed=3)
    assert any("checkpoint-4 is incomplete" in str(w.message) for w in warned)
    assert res.resumed_from_step == 2
    assert [round(x["loss"], 5) for x in res.losses] == [round(x["loss"], 5) for x in ref.losses]
    kept = sorted(ckpts.glob("checkpoint-*"))
    assert len(kept) <= cfg.save_total_limit
    assert all(json.loads((k / "trainer_state.json").read_text()) for k in kept)



def test_a_kill_after_the_last_checkpoint_resumes_without_an_extra_step(tmp_path):
    """Killed after the final checkpoint was saved but before ``final/``: the resumed run trains
    nothing more (Trainer, given batches to spare, used to take a step past ``max_steps``)."""
    insts, cfg = _instances(12), _cfg(max_steps=8, save_steps=2, save_total_limit=2)
    ref = training.fine_tune("tiny-gpt2", insts, output_dir=tmp_path / "ref", config=cfg, seed=3)
    cut = tmp_path / "cut"
    training.fine_tune("tiny-gpt2", insts, output_dir=cut, config=cfg, seed=3)
    shutil.rmtree(cut / "final")                                      # what the kill left unwritten
    (cut / "result.json").unlink()
    res = training.fine_tune("tiny-gpt2", insts, output_dir=cut, config=cfg, seed=3)
    assert res.resumed_from_step == 8 and res.steps == 8
    assert [x["step"] for x in res.losses] == list(range(1, 9))
    assert [round(x["loss"], 5) for x in res.losses] == [round(x["loss"], 5) for x in ref.losses]
    a, _ = training.load_student(ref.model_dir)
    b, _ = training.load_student(res.model_dir)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert max((pa[n] - pb[n]).abs().max().item() for n in pa) < 1e-6

def test_a_full_disk_while_saving_is_a_plain_error(tmp_path, monkeypatch):
    """torch's own words for a full disk are an opaque stream error; fine_tune says what happened."""
    import errno

    import torch

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="disk full") as err:
        training.fine_tune("tiny-gpt2", _instances(8), output_dir=tmp_path / "run", config=_cfg(max_steps=2, save_steps=1))
    assert err.value.errno == errno.ENOSPC and "checkpoints" in str(err.value)
