"""Reliability (docs/reliability.md): no secret reaches disk.  Every file a run writes -- corpus, ledger, lock, DEBUG logs of
every library, executed notebooks, run configs, checkpoints -- is scanned for the API key and for
the credentials of a URL."""
import base64
import logging

import pytest

from scotd_kit.reproduce import reproduce, run_notebook
from scotd_kit.sampling import sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import OpenAICompatibleTeacher, TeacherError

from .fake_openai_server import FakeOpenAIServer
from .reliability_report import record
from .test_reliability_campaign import tiny_notebooks

KEY, USER_PW, QUERY = "sk-scan-ME-NOT-9a8b7c6d", "bob:pw-SCAN-ME-NOT", "q-SCAN-ME-NOT"
ENV = "SCOTD_TEST_API_KEY"
NEEDLES = [KEY, USER_PW.split(":")[1], QUERY, base64.b64encode(USER_PW.encode()).decode(),
           base64.b64encode(KEY.encode()).decode()]

NOTEBOOK_TEACHER = """\
import logging, os
from scotd_kit.teachers import OpenAICompatibleTeacher
teacher = OpenAICompatibleTeacher("m", base_url=os.environ["SCOTD_TEST_BASE_URL"], api_key_env="SCOTD_TEST_API_KEY")
print(teacher, teacher.url)
logging.getLogger("scotd_kit").warning("teacher at %s", teacher.url)
"""


@pytest.fixture
def debug_log(tmp_path):
    (tmp_path / "logs").mkdir()
    handler = logging.FileHandler(tmp_path / "logs" / "debug.log")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(old)
    handler.close()


def test_no_file_a_run_writes_holds_a_secret(tmp_path, monkeypatch, debug_log):
    pytest.importorskip("torch")
    from scotd_kit import training

    from .campaign_workers import instances
    monkeypatch.setenv(ENV, KEY)
    examples = load_split("demo_compare", "validation")[:3]
    with FakeOpenAIServer(faults=[("429", 0), "503", "malformed_json", "reset"]) as server:
        url = server.url.replace("http://", f"http://{USER_PW}@") + f"?token={QUERY}"
        monkeypatch.setenv("SCOTD_TEST_BASE_URL", url)
        teacher = OpenAICompatibleTeacher("fake-model", base_url=url, api_key_env=ENV, backoff_base=0.01)
        sample_corpus("demo_compare", examples, teacher, n=2, corpus_path=tmp_path / "corpus" / "c.jsonl",
                      progress=False)
        server.faults.extend([("echo_key", 400)])
        with pytest.raises(TeacherError) as err:
            sample_corpus("demo_compare", examples, teacher, n=3, corpus_path=tmp_path / "corpus" / "c.jsonl",
                          progress=False)
        (tmp_path / "logs" / "error.txt").write_text(f"{err.value!r}\n{teacher!r}\n")
    training.fine_tune("tiny-gpt2", instances()[:4], output_dir=tmp_path / "train",
                       config=training.TrainConfig.small(max_steps=2, save_steps=1, per_device_train_batch_size=2,
                                                         max_length=32, logging_steps=1), seed=0)
    nbs = tiny_notebooks(tmp_path / "nbs")
    (nbs / "c_teacher.ipynb").write_text((nbs / "a_first.ipynb").read_text().replace(
        "import json, time", NOTEBOOK_TEACHER.replace("\n", "\\n").replace('"', '\\"') + "import json, time"))
    summary = reproduce("smoke", output_dir=tmp_path / "figures", executed_dir=tmp_path / "executed",
                        notebooks_dir=nbs, progress=False)
    assert not summary.failed, summary.failed
    with pytest.raises(ValueError, match="refusing"):          # a URL with credentials is no notebook parameter
        run_notebook(nbs / "a_first.ipynb", "smoke", tmp_path / "figures", tmp_path / "executed",
                     parameters={"base_url": url})

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".jsonl", ".json", ".log", ".ipynb", ".safetensors", ".lock"} <= kinds
    assert "127.0.0.1" in (tmp_path / "logs" / "debug.log").read_text()      # the DEBUG log did record the calls
    leaks = [(str(p.relative_to(tmp_path)), s) for p in files for s in NEEDLES if s.encode() in p.read_bytes()]
    assert leaks == []
    record("test_no_file_a_run_writes_holds_a_secret",
           "secrets: API key in the environment, credentials in base_url (user:password@, ?token=)",
           len(files), "no file holds the key, the password, the token or their base64 forms", 0,
           files_scanned=len(files), megabytes=round(sum(p.stat().st_size for p in files) / 2 ** 20, 1),
           kinds=" ".join(sorted(k for k in kinds if k)))
