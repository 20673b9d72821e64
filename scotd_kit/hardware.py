"""The one rule that asks the hardware where a model runs and in which precision.

Every model load, teacher, training run, evaluation and the Socratic loop asks :func:`choose`; none
assumes a device or a dtype from the machine it was written on.

* **Device**: the GPU when torch sees one (the first; more than one without a launcher is trained on
  one, see ``training``), else Apple's MPS, else the CPU.
* **Precision** (``"fast"``, the default wish): the fastest type the device computes *natively*:

  - CUDA: bf16 on compute capability >= 8.0 (A100, L4, H100); fp16 below (T4, V100), trained with
    loss scaling. ``torch.cuda.is_bf16_supported()`` answers True on a T4 because it counts
    emulation, so the rule reads the compute capability instead.
  - CPU: bf16 only where the CPU has bf16 instructions (AVX512-BF16 or AMX) *and* torch dispatches to
    them (``torch.backends.cpu.get_cpu_capability()`` is an AVX-512 level); fp32 otherwise. On an
    AVX2-only CPU a bf16 matmul of the demo teacher's shape ran 65x slower than fp32.
  - MPS: fp32 (half types there are not uniformly faster for these model sizes).

* An explicit request (``"bf16"``, ``"fp16"``, ``"fp32"``, or torch's names) that the device can only
  emulate warns once, naming the reason, and takes the fast path; with a trailing ``!``
  (``"bf16!"``) the request insists and an emulated type is an error. ``$SCOTD_PRECISION`` sets the
  wish for a whole process (e.g. ``fp32`` for bit-stable comparisons).

What was chosen and why is part of every run's key and every summary (:func:`describe`).
"""
from __future__ import annotations

import os
import platform
import warnings
from dataclasses import asdict, dataclass

PRECISIONS = ("fp32", "bf16", "fp16")
WISHES = ("fast",)
_ALIASES = {"float32": "fp32", "fp32": "fp32", "float": "fp32", "32": "fp32",
            "bfloat16": "bf16", "bf16": "bf16",
            "float16": "fp16", "fp16": "fp16", "half": "fp16", "16": "fp16"}
_warned: set = set()


class PrecisionError(ValueError):
    """A precision the hardware can only emulate, insisted on (``"bf16!"``), or one the kit does not know."""


@dataclass(frozen=True)
class Machine:
    """What the hardware answers: the device the kit uses and what it computes natively."""
    device: str                # "cuda" | "mps" | "cpu"
    name: str                  # the GPU's name or the CPU's model
    capability: str            # "sm80" for a GPU; torch's CPU capability ("AVX2", "AVX512", ...) for the CPU
    native: tuple              # precisions computed natively, fastest first
    gpus: int                  # CUDA devices visible to this process
    memory_bytes: int          # the device's free memory
    cpu_capability: str        # torch's CPU capability, on every machine (the CPU still tokenizes and orchestrates)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Choice:
    """Where and in which precision one role runs, and why."""
    device: str
    precision: str             # "fp32" | "bf16" | "fp16"
    reason: str

    @property
    def dtype(self):
        return torch_dtype(self.precision)

    def as_dict(self) -> dict:
        return asdict(self)


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[normalise(precision)[0]]


def normalise(requested) -> tuple[str, bool]:
    """``(precision or "fast", insist)`` of a request: a name, a torch dtype, or None / ``"auto"`` (the
    default wish: ``$SCOTD_PRECISION`` if set, else "fast")."""
    if requested is None or str(requested).strip().lower() == "auto":
        requested = os.environ.get("SCOTD_PRECISION") or "fast"
    text = str(requested).strip().lower().removeprefix("torch.")
    insist = text.endswith("!")
    text = text.rstrip("!")
    if text in WISHES:
        return "fast", insist
    if text in _ALIASES:
        return _ALIASES[text], insist
    raise PrecisionError(f"unknown precision {requested!r}; use one of fast, {', '.join(PRECISIONS)} "
                         f"(or torch's names: float32, bfloat16, float16), with a trailing '!' to insist")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def cpu_native_bf16() -> bool:
    """bf16 instructions on this CPU (AVX512-BF16 or AMX tiles) that torch dispatches to: under
    ``ATEN_CPU_CAPABILITY=avx2`` (an AVX2-only stand-in) the instructions exist but are not used."""
    import torch

    if not cpu_capability().upper().startswith("AVX512"):
        return False
    probe = getattr(torch, "cpu", None)
    has = [getattr(probe, f, None) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(f() for f in has if f is not None)


def _free_cpu_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def machine() -> Machine:
    """Ask torch what this process runs on (called each time: cheap, and tests fake the answers)."""
    import torch

    cap = cpu_capability()
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        native = ("bf16", "fp16", "fp32") if major >= 8 else ("fp16", "fp32")
        try:
            free = torch.cuda.mem_get_info(0)[0]
        except Exception:       # a faked or busy device: report total memory
            free = getattr(torch.cuda.get_device_properties(0), "total_memory", 0)
        return Machine("cuda", torch.cuda.get_device_name(0), f"sm{major}{minor}", native,
                       torch.cuda.device_count(), int(free), cap)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return Machine("mps", "Apple MPS", "mps", ("fp32",), 0, _free_cpu_memory(), cap)
    return _cpu_machine(cap)


def _cpu_machine(cap: str, gpus: int = 0) -> Machine:
    native = ("bf16", "fp32") if cpu_native_bf16() else ("fp32",)
    return Machine("cpu", cpu_model(), cap, native, gpus, _free_cpu_memory(), cap)


def _why_not(m: Machine, precision: str) -> str:
    if m.device == "cuda":
        return (f"{m.name} ({m.capability}) has no bf16 tensor cores (compute capability 8.0 and up have them); "
                f"torch would emulate it, several times slower than fp16")
    if m.device == "cpu":
        return (f"this CPU (torch capability {m.capability}) has no native {precision} instructions "
                f"(AVX512-BF16 or AMX); torch would emulate it, many times slower than fp32")
    return f"{m.device} has no fast {precision} path for these models"


def choose(requested=None, *, role: str = "model", device: str | None = None, m: Machine | None = None) -> Choice:
    """Device and precision for ``role`` ("teacher", "student", "evaluation", ...) given a wish or an
    explicit request; see the module docstring for the rule. ``device``: where the model will run if
    the caller already placed it (a model on the CPU of a GPU machine runs in fp32 or native bf16)."""
    m = m or machine()
    want, insist = normalise(requested)
    on = device or m.device
    if on == "cpu" and m.device != "cpu":       # a model kept on the CPU of a GPU machine
        m = _cpu_machine(m.cpu_capability, m.gpus)
    fast = m.native[0]
    if want == "fast":
        return Choice(on, fast, f"fastest native type on {m.name} ({m.capability})")
    if want in m.native:
        return Choice(on, want, f"requested, native on {m.name} ({m.capability})")
    why = _why_not(m, want)
    if insist:
        raise PrecisionError(f"{role}: {want} was insisted on ({want}!), but {why}")
    key = (role, want, m.device, m.capability)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"{role}: {want} requested, but {why}; using {fast} (ask '{want}!' to insist)",
                      RuntimeWarning, stacklevel=2)
    return Choice(on, fast, f"{want} requested but emulated on {m.name} ({m.capability}); {fast} instead")


def device_map(choice: Choice):
    """``from_pretrained``'s ``device_map`` that puts weights straight onto the chosen device (no copy
    through CPU RAM first: Colab has 12.7 GB of it), None for the CPU."""
    if choice.device == "cuda":
        return {"": 0}
    if choice.device == "mps":
        return {"": "mps"}
    return None


def describe(roles: dict | None = None) -> dict:
    """The facts a summary starts with: the machine and, per role, the device and precision chosen
    (``roles``: role -> requested precision, None for the wish)."""
    import torch

    m = machine()
    out = {"device": m.device, "name": m.name, "capability": m.capability, "cpu_capability": m.cpu_capability,
           "cpu_model": cpu_model(), "native": list(m.native), "gpus": m.gpus,
           "free_memory_gb": round(m.memory_bytes / 2 ** 30, 1), "torch": torch.__version__}
    for role, requested in (roles or {}).items():
        try:
            c = choose(requested, role=role, m=m)
            out[role] = c.as_dict()
        except PrecisionError as e:
            out[role] = {"error": str(e)}
    return out


def warn_if_gpu_unused(model) -> None:
    """Say so (once per process) when a GPU is present and a model decodes on the CPU anyway."""
    import torch

    if not torch.cuda.is_available():
        return
    try:
        dev = next(model.parameters()).device.type
    except (StopIteration, AttributeError):
        return
    if dev == "cpu" and "gpu-unused" not in _warned:
        _warned.add("gpu-unused")
        warnings.warn("a GPU is present but this model decodes on the CPU; load it with "
                      "scotd_kit.models.load_model (it places models on the GPU) or move it with .to('cuda')",
                      RuntimeWarning, stacklevel=3)
