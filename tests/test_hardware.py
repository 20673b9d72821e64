"""The hardware rule (scotd_kit.hardware) on the machines the developers do not have, through stand-ins
that fake torch's own capability answers (tests/machines.py): every entry point asks the rule."""
import functools
import json
import warnings

import pytest
import torch

from scotd_kit import hardware, models, training
from scotd_kit.profiles import PROFILES, get_profile

from .machines import stand_in

# what every role resolves to on each machine under the default wish
FAST = {"avx2_cpu": ("cpu", "fp32"), "amx_cpu": ("cpu", "bf16"), "t4": ("cuda", "fp16"),
        "two_t4": ("cuda", "fp16"), "a100": ("cuda", "bf16")}


@pytest.fixture(autouse=True)
def _fresh_warnings():
    hardware._warned.clear()
    yield
    hardware._warned.clear()


def test_the_default_wish_is_the_fastest_native_type(machine):
    c = hardware.choose(None, role="teacher")
    assert (c.device, c.precision) == FAST[machine]
    assert hardware.choose("auto").precision == hardware.choose("fast").precision == c.precision


def test_a_t4_gets_fp16_although_torch_says_it_supports_bf16(monkeypatch):
    stand_in(monkeypatch, "t4")
    assert torch.cuda.is_bf16_supported()            # what torch answers there: emulation counts
    assert models.preferred_dtype() == torch.float16
    assert training.TrainConfig.paper().resolved_precision() == "fp16"


def test_an_emulated_request_warns_once_and_takes_the_fast_path(monkeypatch):
    stand_in(monkeypatch, "avx2_cpu")
    with pytest.warns(RuntimeWarning, match="no native bf16.*using fp32"):
        assert hardware.choose("bfloat16", role="teacher").precision == "fp32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # the second time it is quiet
        assert hardware.choose("bf16", role="teacher").precision == "fp32"
    with pytest.raises(hardware.PrecisionError, match="teacher: bf16 was insisted on"):
        hardware.choose("bf16!", role="teacher")
    stand_in(monkeypatch, "t4")
    with pytest.warns(RuntimeWarning, match="Tesla T4 \\(sm75\\) has no bf16 tensor cores"):
        assert hardware.choose("bf16", role="training").precision == "fp16"


def test_native_requests_are_kept_and_unknown_ones_named(monkeypatch):
    stand_in(monkeypatch, "a100")
    assert hardware.choose("fp32").precision == "fp32" and hardware.choose(torch.float16).precision == "fp16"
    with pytest.raises(hardware.PrecisionError, match="unknown precision 'fp8'"):
        hardware.choose("fp8")


def test_the_avx2_stand_in_of_the_environment_is_read_from_torch(monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2 on an AVX-512 host: the bf16 instructions exist but torch does not use them."""
    stand_in(monkeypatch, "amx_cpu")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert hardware.choose(None).precision == "fp32"


def test_load_model_places_weights_on_the_chosen_device_in_the_chosen_type(machine, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = {}
    real = AutoModelForCausalLM.from_pretrained

    def spy(path, **kw):
        seen.update(kw)
        return real(path, dtype=torch.float32)       # built on the CPU: the fake GPU runs nothing

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    model, _ = models.load_model("tiny-gpt2")
    device, precision = FAST[machine]
    assert seen["dtype"] == hardware.torch_dtype(precision)
    assert seen.get("device_map") == ({"": 0} if device == "cuda" else None)   # straight onto the GPU
    assert seen["use_kernels"] is False    # no layer swapped for hub code at load (fails offline on a GPU)
    assert (model.scotd_choice.device, model.scotd_choice.precision) == (device, precision)


def test_local_teacher_ids_carry_the_resolved_precision_and_device(machine):
    from scotd_kit.teachers import LocalTeacher

    device, precision = FAST[machine]
    teacher = LocalTeacher("tiny-gpt2")
    assert teacher.id == f"local:tiny-gpt2+sb+{precision}" + ("" if device == "cpu" else "@cuda")
    assert teacher._model is None                    # asked without loading the weights


def test_training_on_a_gpu_leaves_out_cudnn_attention():
    """cuDNN's SDPA backward made a fully masked (left-pad) row's gradients NaN on an H200: training on a GPU runs
    with the flash, memory-efficient and math kernels only; on the CPU nothing is changed."""
    from types import SimpleNamespace

    def on(device):      # a model stand-in whose weights sit on `device`
        return SimpleNamespace(parameters=lambda: iter([SimpleNamespace(device=torch.device(device))]))

    before = torch.backends.cuda.cudnn_sdp_enabled()
    with training._attention_kernels(on("cuda")):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled() and torch.backends.cuda.math_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    with training._attention_kernels(on("cpu")):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_training_arguments_follow_the_rule(machine):
    cfg = training.TrainConfig.small()
    device, precision = FAST[machine]
    assert cfg.resolved_precision() == precision
    assert cfg.shaping_settings()["precision"] == precision and cfg.shaping_settings()["device"] == device
    assert cfg.cpu_only() == (device == "cpu")


def test_every_profile_resolves_every_role_on_every_machine(machine):
    """Under the AVX2-only stand-in every role of every profile (the demo's included) runs fp32; on the
    AMX stand-in bf16; on a T4 fp16; on an A100 bf16 -- no profile names a dtype tied to one machine."""
    from scotd_kit.training import placement_of
    from scotd_kit.socratic.settings import socratic_settings
    from scotd_kit.teachers import LocalTeacher

    device, precision = FAST[machine]
    for name in PROFILES:
        p = get_profile(name)
        if not p.teacher.startswith(("replay:", "openai:", "vllm:")):
            assert LocalTeacher(p.teacher, dtype=p.teacher_dtype).placement().precision == precision, name
        cfg = training.TrainConfig.recipe(p.train_recipe, **p.train_overrides())
        assert cfg.resolved_precision() == precision, name
        assert (placement_of(p.student).device, placement_of(p.student).precision) == (device, precision), name
        s = socratic_settings(name)
        assert hardware.choose(s.precision, role="training").precision == precision, name


def test_describe_names_the_machine_and_each_role(machine):
    facts = hardware.describe({"teacher": None, "student": "bf16", "evaluation": None})
    device, precision = FAST[machine]
    assert facts["device"] == device and facts["teacher"]["precision"] == precision
    assert facts["cpu_capability"] in ("AVX2", "AVX512")
    json.dumps(facts)                                 # goes into summaries as it is


def test_two_visible_gpus_without_a_launcher_train_on_one(monkeypatch, tmp_path):
    """Trainer would wrap the model in nn.DataParallel, whose replicas break the target-only head."""
    from transformers import TrainingArguments

    setup = TrainingArguments.__dict__["_setup_devices"]

    def two_gpus(self):
        dev = setup.func(self)
        self._n_gpu = 2                               # what TrainingArguments sets seeing two GPUs, no launcher
        return dev

    cached = functools.cached_property(two_gpus)
    cached.__set_name__(TrainingArguments, "_setup_devices")
    monkeypatch.setattr(TrainingArguments, "_setup_devices", cached)
    wrapped = []

    class Recorded(torch.nn.DataParallel):
        def __init__(self, module, *a, **k):
            wrapped.append(module)
            super().__init__(module, *a, **k)

    monkeypatch.setattr(torch.nn, "DataParallel", Recorded)
    instances = [{"id": str(i), "input": f"Q: {i}\nA: ", "targets": [f"{i} So the answer is: {i}"]} for i in range(8)]
    cfg = training.TrainConfig.small(max_steps=2, per_device_train_batch_size=4, save_steps=50)
    with pytest.warns(RuntimeWarning, match="2 GPUs are visible to one process: training on one"):
        result = training.fine_tune("tiny-gpt2", instances, output_dir=tmp_path / "run", method="full", config=cfg)
    assert result.steps == 2 and wrapped == []


def test_the_gpu_check_runs_its_cpu_possible_parts(tmp_path):
    """benchmarks/gpu_check.py --smoke: every check present, the CUDA-only ones say so, the rest pass."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    checks = {r["check"]: r for r in result["checks"]}
    assert set(checks) == {"rule", "fused_attention", "fp16_t4_path", "bf16", "qlora_4bit", "lora_resume",
                           "engine_greedy", "sampling", "sc_eval", "full_ft_mfu"}
    assert checks["qlora_4bit"]["skipped"] == "needs a CUDA device" and checks["fp16_t4_path"]["ok"] is None
    assert checks["engine_greedy"]["equal_fp32"] == checks["engine_greedy"]["of"]
    assert checks["lora_resume"]["resumed_from_step"] == 4
    assert 0 < checks["full_ft_mfu"]["mfu"] < 1
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--smoke", "--only", "rule",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert [r["check"] for r in json.loads(out.read_text())["checks"]] == ["rule"]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_check.py"), "--smoke", "--only", "rule,qlora"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 2 and "no check named qlora" in proc.stderr
