"""The in-process vLLM teacher against a fake of vLLM's offline API, and the `vllm serve` + `openai:` path
against the fake OpenAI-compatible server.

There is no GPU here: the fake follows vLLM's own API as of vLLM 0.33 -- ``LLM(model=..., **engine_args)``,
``LLM.generate(prompts, sampling_params, *, use_tqdm=...)`` returning one ``RequestOutput`` per prompt, in
order, whose ``outputs`` are ``CompletionOutput`` (``text``, ``token_ids``, ``cumulative_logprob``,
``logprobs``, ``finish_reason`` "stop"/"length", ``stop_reason`` the stop string or None for EOS);
``SamplingParams`` refuses unknown fields and out-of-range values; the children of an ``n > 1`` request
are seeded ``seed + j`` (``vllm/v1/engine/parallel_sampling.py``); ``llm.llm_engine.engine_core.shutdown()``
and ``vllm.distributed.parallel_state.cleanup_dist_env_and_memory()`` free an engine.  A sample's text is
a function of (prompt, seed) alone, so a teacher that seeds samples wrongly gets other texts.
"""
from __future__ import annotations

import gc
import hashlib
import sys
import types
import weakref

import pytest

from scotd_kit.sampling import sample_corpus
from scotd_kit.tasks import load_split
from scotd_kit.teachers import SampleRequest, SamplingSettings, VLLMTeacher

from .fake_openai_server import FakeOpenAIServer

MODEL = "fake-org/fake-teacher"

# the fields of vllm.SamplingParams a caller may set (vllm/sampling_params.py, 0.33)
SAMPLING_FIELDS = dict(n=1, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0, temperature=1.0,
                       top_p=1.0, top_k=0, min_p=0.0, seed=None, stop=None, stop_token_ids=None, ignore_eos=False,
                       max_tokens=16, min_tokens=0, logprobs=None, prompt_logprobs=None, detokenize=True,
                       skip_special_tokens=True, include_stop_str_in_output=False)
# a few of vllm.EngineArgs' fields, enough to catch a misspelt one
ENGINE_ARGS = {"dtype", "quantization", "enable_prefix_caching", "gpu_memory_utilization", "max_model_len",
               "tensor_parallel_size", "seed", "trust_remote_code", "tokenizer", "enforce_eager"}


class Logprob:
    def __init__(self, logprob: float, rank: int | None = None, decoded_token: str | None = None):
        self.logprob, self.rank, self.decoded_token = logprob, rank, decoded_token


class CompletionOutput:
    def __init__(self, index, text, token_ids, cumulative_logprob, logprobs, finish_reason=None, stop_reason=None):
        self.index, self.text, self.token_ids = index, text, token_ids
        self.cumulative_logprob, self.logprobs = cumulative_logprob, logprobs
        self.finish_reason, self.stop_reason = finish_reason, stop_reason


class RequestOutput:
    def __init__(self, request_id, prompt, prompt_token_ids, prompt_logprobs, outputs, finished):
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.prompt_logprobs, self.outputs, self.finished = prompt_logprobs, outputs, finished


class SamplingParams:
    made: list["SamplingParams"] = []

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(SAMPLING_FIELDS)
        if unknown:
            raise TypeError(f"SamplingParams got unexpected fields {sorted(unknown)}")
        self.__dict__.update({**SAMPLING_FIELDS, **kwargs})
        self.given = dict(kwargs)
        if self.seed == -1:
            self.seed = None
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop or [])
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not isinstance(self.top_k, int) or self.top_k < -1:
            raise ValueError(f"top_k must be 0 (disable), or at least 1, got {self.top_k}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.logprobs is not None and self.logprobs < 0:
            raise ValueError(f"logprobs must be non-negative, got {self.logprobs}")
        if self.seed is not None and not 0 <= self.seed < 2 ** 64:   # torch.Generator.manual_seed's range
            raise ValueError(f"seed out of range: {self.seed}")
        SamplingParams.made.append(self)


class Tokenizer:
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [int(hashlib.md5(w.encode()).hexdigest()[:6], 16) for w in text.split()]
        return ([1] if add_special_tokens else []) + ids


def fake_sample(prompt: str, seed, params: SamplingParams, index: int) -> CompletionOutput:
    """A sample as a function of (prompt, seed): the same pair gives the same text, in any batch."""
    h = hashlib.sha256(f"{prompt}|{seed}|{params.temperature}".encode()).hexdigest()
    words = [" Step", h[:6], "gives", str(int(h[6:8], 16) % 10) + ".", "So", "the", "answer", "is:",
             str(int(h[8:10], 16) % 20)]
    kind = int(h[10], 16) % 4
    if kind == 0 or len(words) >= params.max_tokens:                    # cut at max_tokens
        words, finish, stop_reason, end = words[:params.max_tokens], "length", None, []
    elif kind == 1:                                                    # EOS: stop_reason None
        finish, stop_reason, end = "stop", None, [2]
    else:                                                              # the stop string "\n\n"
        finish, stop_reason, end = "stop", params.stop[0] if params.stop else None, [13]
    token_ids = [int(hashlib.md5(f"{h}{k}".encode()).hexdigest()[:6], 16) for k in range(len(words))] + end
    lps = [-(int(hashlib.md5(f"{h}lp{k}".encode()).hexdigest()[:4], 16) % 1000) / 500 for k in range(len(token_ids))]
    logprobs = [{t: Logprob(lp, 1)} for t, lp in zip(token_ids, lps)] if params.logprobs is not None else None
    return CompletionOutput(index=index, text="".join(w if w.startswith(" ") else " " + w for w in words),
                            token_ids=token_ids, cumulative_logprob=sum(lps), logprobs=logprobs,
                            finish_reason=finish, stop_reason=stop_reason)


class EngineCore:
    def __init__(self):
        self.down = False

    def shutdown(self, timeout: float | None = None) -> None:
        self.down = True


class LLM:
    built: list = []        # weak references to every engine built
    prompts_seen: list = []

    def __init__(self, model: str, **engine_args):
        unknown = set(engine_args) - ENGINE_ARGS
        if unknown:
            raise TypeError(f"EngineArgs got unexpected fields {sorted(unknown)}")
        self.model, self.engine_args = model, engine_args
        self.llm_engine = types.SimpleNamespace(engine_core=EngineCore())
        LLM.built.append(weakref.ref(self))

    def get_tokenizer(self):
        return Tokenizer()

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None, priority=None,
                 tokenization_kwargs=None, mm_processor_kwargs=None):
        assert not self.llm_engine.engine_core.down, "generate on a shut-down engine"
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        params = sampling_params if isinstance(sampling_params, (list, tuple)) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        LLM.prompts_seen.extend(prompts)
        outs = []
        for k, (prompt, p) in enumerate(zip(prompts, params)):
            # vLLM's parallel sampling: child j of a seeded n > 1 request is seeded seed + j
            seeds = [None if p.seed is None else p.seed + j for j in range(p.n)]
            children = [fake_sample(prompt, s if s is not None else object(), p, j) for j, s in enumerate(seeds)]
            outs.append(RequestOutput(str(k), prompt, Tokenizer().encode(prompt), None, children, True))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    """``vllm`` in sys.modules: the teacher imports the fake, and each test sees a fresh record."""
    cleanups = []
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    distributed = types.ModuleType("vllm.distributed")
    parallel_state = types.ModuleType("vllm.distributed.parallel_state")

    def cleanup_dist_env_and_memory(shutdown_ray: bool = False):
        cleanups.append([r() for r in LLM.built if r() is not None])   # engines still alive at cleanup

    parallel_state.cleanup_dist_env_and_memory = cleanup_dist_env_and_memory
    parallel_state.destroy_model_parallel = lambda: None
    parallel_state.destroy_distributed_environment = lambda: None
    distributed.parallel_state = parallel_state
    distributed.cleanup_dist_env_and_memory = cleanup_dist_env_and_memory
    vllm.distributed = distributed
    for name, mod in [("vllm", vllm), ("vllm.distributed", distributed),
                      ("vllm.distributed.parallel_state", parallel_state)]:
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(LLM, "built", [])
    monkeypatch.setattr(LLM, "prompts_seen", [])
    monkeypatch.setattr(SamplingParams, "made", [])
    vllm.cleanups = cleanups
    yield vllm
    from scotd_kit.teachers import vllm_backend

    if hasattr(vllm_backend, "close_all"):
        vllm_backend.close_all()


def live_engines() -> list:
    gc.collect()
    return [r() for r in LLM.built if r() is not None and not r().llm_engine.engine_core.down]


def settings(**kw) -> SamplingSettings:
    return SamplingSettings(**{"temperature": 1.0, "max_new_tokens": 32, "stop": ("\n\n",), **kw})


# -- the spec --------------------------------------------------------------------------------------------

def test_vllm_spec_builds_a_vllm_teacher_without_building_the_engine(fake_vllm):
    from scotd_kit.teachers import teacher_from_spec

    teacher = teacher_from_spec(f"vllm:{MODEL}")
    assert isinstance(teacher, VLLMTeacher)
    assert teacher.id == f"vllm:{MODEL}+sb"
    assert LLM.built == []                       # a rerun with a complete corpus never builds it
    assert teacher_from_spec(f"vllm:{MODEL}", dtype="bfloat16").id == f"vllm:{MODEL}+sb+bfloat16"
    # the kit's precision names (a profile's teacher_dtype) reach vLLM under its own names
    assert teacher_from_spec(f"vllm:{MODEL}", dtype="bf16").id == f"vllm:{MODEL}+sb+bfloat16"
    assert teacher_from_spec(f"vllm:{MODEL}", dtype="auto").id == f"vllm:{MODEL}+sb"


def test_a_vllm_teacher_is_made_where_vllm_is_not_installed(monkeypatch):
    """A corpus sampled in vLLM's environment is reused from the kit's own, where vLLM is absent."""
    from scotd_kit.teachers import teacher_from_spec
    from scotd_kit.teachers import TeacherUnavailableError

    monkeypatch.setitem(sys.modules, "vllm", None)      # import vllm raises ImportError
    teacher = teacher_from_spec(f"vllm:{MODEL}")
    assert teacher.id == f"vllm:{MODEL}+sb"
    with pytest.raises(TeacherUnavailableError, match="own environment"):
        teacher.sample([SampleRequest(prompt="Q: x\nA:", n=1, seed=1)], settings())


def test_the_engine_gets_the_teachers_dtype_and_engine_args(fake_vllm):
    teacher = VLLMTeacher(MODEL, dtype="bfloat16", gpu_memory_utilization=0.5)
    teacher.sample([SampleRequest(prompt="Q: x\nA:", n=1, seed=1)], settings())
    (engine,) = live_engines()
    assert engine.model == MODEL
    assert engine.engine_args == {"dtype": "bfloat16", "gpu_memory_utilization": 0.5, "enable_prefix_caching": True}


# -- seeds --------------------------------------------------------------------------------------------------

def test_each_sample_is_its_own_request_with_its_own_seed(fake_vllm):
    req = SampleRequest(prompt="Few.\n\nQ: x\nA: ", n=3, seed=11, seeds=(11, 22, 33), prefix="Few.\n\n")
    (res,) = VLLMTeacher(MODEL).sample([req], settings(top_k=None, top_p=0.9, temperature=0.7))
    assert [p.n for p in SamplingParams.made] == [1, 1, 1]
    assert [p.seed for p in SamplingParams.made] == [11, 22, 33]
    assert SamplingParams.made[0].given == dict(n=1, seed=11, temperature=0.7, top_p=0.9, top_k=0, max_tokens=32,
                                                stop=["\n\n"], logprobs=0)
    assert LLM.prompts_seen == ["Few.\n\nQ: x\nA:"] * 3     # the trailing space moves into the completion
    assert len(res.completions) == 3 and len({c.text for c in res.completions}) == 3


def test_a_top_up_draws_the_samples_a_direct_run_draws(fake_vllm, tmp_path):
    examples = load_split("demo_arith", "train", limit=3)
    teacher = VLLMTeacher(MODEL)
    kw = dict(max_new_tokens=32, temperature=1.0, progress=False, batch_size=2)
    sample_corpus("demo_arith", examples, teacher, n=2, corpus_path=tmp_path / "a.jsonl", **kw)
    topped = sample_corpus("demo_arith", examples, teacher, n=6, corpus_path=tmp_path / "a.jsonl", **kw)
    direct = sample_corpus("demo_arith", examples, teacher, n=6, corpus_path=tmp_path / "b.jsonl", **kw)

    def texts(c):
        return {(r["instance_id"], r["sample_index"]): r["text"] for r in c.records()}

    assert len(texts(direct)) == 18
    assert texts(topped) == texts(direct)
    assert len(set(texts(direct).values())) > 12            # the samples differ from each other


# -- what a completion records --------------------------------------------------------------------------

def test_completions_map_vllms_finish_and_stop_reasons(fake_vllm):
    req = SampleRequest(prompt="Q: x\nA: ", n=40, seed=5)
    (res,) = VLLMTeacher(MODEL).sample([req], settings(max_new_tokens=32))
    outs = [fake_sample("Q: x\nA:", s, SamplingParams.made[0], 0) for s in req.sample_seeds]
    SamplingParams.made.clear()
    want = {("length", None): "length", ("stop", None): "eos", ("stop", "\n\n"): "stop"}
    assert {c.finish_reason for c in res.completions} == {"length", "eos", "stop"}
    for comp, out in zip(res.completions, outs):
        assert comp.finish_reason == want[(out.finish_reason, out.stop_reason)]
        ended = comp.finish_reason != "length"
        assert comp.completion_tokens == len(out.token_ids) - ended     # the stop / EOS token is not counted
        lps = [next(iter(d.values())).logprob for d in out.logprobs][:comp.completion_tokens]
        assert comp.mean_logprob == pytest.approx(sum(lps) / len(lps))
        assert comp.text == out.text[1:] and not comp.text.startswith(" ")
        assert comp.prompt_tokens == len(Tokenizer().encode("Q: x\nA:"))
    assert res.completion_tokens == sum(c.completion_tokens for c in res.completions)
    assert res.prompt_tokens == len(Tokenizer().encode("Q: x\nA:"))    # once: the copies hit the prefix cache


# -- memory ---------------------------------------------------------------------------------------------

def test_close_frees_the_engine_and_a_later_sample_builds_a_new_one(fake_vllm):
    teacher = VLLMTeacher(MODEL)
    req = SampleRequest(prompt="Q: x\nA:", n=2, seed=3)
    first = teacher.sample([req], settings())
    engine = weakref.ref(live_engines()[0])
    teacher.close()
    gc.collect()
    assert engine() is None                       # no reference left: vLLM's finalizers run
    assert fake_vllm.cleanups == [[]]             # cleanup_dist_env_and_memory ran after the engine was gone
    again = teacher.sample([req], settings())
    assert len(LLM.built) == 2 and len(live_engines()) == 1
    assert [c.text for c in again[0].completions] == [c.text for c in first[0].completions]
    teacher.close()
    teacher.close()                               # closing twice is harmless
    assert live_engines() == []


def test_close_leaves_an_engine_the_caller_built(fake_vllm):
    llm = LLM(MODEL)
    teacher = VLLMTeacher(MODEL, llm=llm)
    teacher.sample([SampleRequest(prompt="Q: x\nA:", n=1, seed=3)], settings())
    teacher.close()
    assert not llm.llm_engine.engine_core.down and fake_vllm.cleanups == []


def test_release_closes_every_open_vllm_teacher(fake_vllm):
    from scotd_kit import stages
    from scotd_kit.teachers import teacher_from_spec

    teacher = teacher_from_spec(f"vllm:{MODEL}")
    teacher.sample([SampleRequest(prompt="Q: x\nA:", n=1, seed=3)], settings())
    assert len(live_engines()) == 1
    stages.release()
    assert live_engines() == [] and not teacher.engine_built


def test_the_teachers_engine_is_freed_before_a_student_trains(fake_vllm, tmp_path, monkeypatch):
    import scotd_kit.training as training
    from scotd_kit import stages

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path))
    p = stages.settings("smoke", teacher=f"vllm:{MODEL}")
    records = stages.corpus(p, "gsm8k")
    assert records and records[0]["teacher"] == f"vllm:{MODEL}+sb"
    assert len(live_engines()) == 1               # the corpus's teacher still holds its engine

    class Trained(Exception):
        pass

    def fine_tune(*args, **kwargs):
        raise Trained(len(live_engines()))

    monkeypatch.setattr(training, "fine_tune", fine_tune)
    with pytest.raises(Trained) as e:
        stages.student(p, stages.instances(p, "gsm8k", setting="full", training="label_only"))
    assert e.value.args == (0,)


def test_a_complete_vllm_corpus_is_reused_where_vllm_is_not_installed(fake_vllm, tmp_path, monkeypatch):
    """Sample in vLLM's environment, train in the kit's: the rerun asks the teacher nothing."""
    from scotd_kit import stages

    monkeypatch.setenv("SCOTD_RUNS_DIR", str(tmp_path))
    p = stages.settings("smoke", teacher=f"vllm:{MODEL}")
    sampled = stages.corpus(p, "gsm8k")
    stages.release()
    monkeypatch.setitem(sys.modules, "vllm", None)      # import vllm raises ImportError
    again = stages.corpus(p, "gsm8k")
    assert again == sampled and len(LLM.built) == 1


def test_count_tokens_does_not_build_the_engine(fake_vllm, monkeypatch):
    import transformers

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda name: Tokenizer())
    teacher = VLLMTeacher(MODEL)
    assert teacher.count_tokens("one two three") == 3
    assert LLM.built == []


# -- `vllm serve` + the openai teacher -------------------------------------------------------------------

def test_openai_spec_one_sample_per_call_tops_up_like_a_direct_run(tmp_path, monkeypatch):
    """A vLLM server honours ``n`` and seeds its children seed + j; with SCOTD_ONE_SAMPLE_PER_CALL=1 the
    ``openai:`` teacher sends one call per sample seed, so a top-up equals a direct run."""
    from scotd_kit.teachers import teacher_from_spec

    examples = load_split("demo_arith", "train", limit=2)
    kw = dict(max_new_tokens=32, temperature=1.0, progress=False)

    def texts(c):
        return {(r["instance_id"], r["sample_index"]): r["text"] for r in c.records()}

    with FakeOpenAIServer(supports_n=True) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.setenv("SCOTD_ONE_SAMPLE_PER_CALL", "1")
        teacher = teacher_from_spec("openai:served-model")
        sample_corpus("demo_arith", examples, teacher, n=2, corpus_path=tmp_path / "a.jsonl", **kw)
        topped = sample_corpus("demo_arith", examples, teacher, n=5, corpus_path=tmp_path / "a.jsonl", **kw)
        direct = sample_corpus("demo_arith", examples, teacher, n=5, corpus_path=tmp_path / "b.jsonl", **kw)
        assert all(e["body"].get("n", 1) == 1 for e in server.log)
    assert len(texts(direct)) == 10 and texts(topped) == texts(direct)
    assert teacher.id == "openai:served-model"      # how calls are split is not part of the corpus key
