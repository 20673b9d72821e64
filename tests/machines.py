"""Stand-ins for the machines the developers do not have: each fakes torch's own capability answers
(what torch would say on that machine), so every entry point's choice can be asserted on a CPU host.

* ``avx2_cpu``   -- an AVX2/FMA CPU without bf16 instructions (AMD Zen 2/3, most laptops and cloud CPUs)
* ``amx_cpu``    -- an Intel CPU with AMX and AVX512-BF16 (Sapphire Rapids and later)
* ``t4``         -- a Tesla T4 (sm75): ``torch.cuda.is_bf16_supported()`` answers True, counting emulation
* ``a100``       -- an A100 (sm80): native bf16
* ``two_t4``     -- two T4s visible to one process (Kaggle), no launcher

Only torch's answers are faked: a test may ask what would be chosen, not run a kernel on a fake GPU.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

GPUS = {
    "t4": dict(name="Tesla T4", capability=(7, 5), count=1, memory=15_828_320_256),
    "two_t4": dict(name="Tesla T4", capability=(7, 5), count=2, memory=15_828_320_256),
    "a100": dict(name="NVIDIA A100-SXM4-40GB", capability=(8, 0), count=1, memory=42_298_834_944),
}
CPUS = {
    "avx2_cpu": dict(capability="AVX2", bf16=False, amx=False),
    "amx_cpu": dict(capability="AVX512", bf16=True, amx=True),
}
MACHINES = (*CPUS, *GPUS)


def _no_mps(monkeypatch):
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)


def fake_cpu(monkeypatch, name: str) -> None:
    c = CPUS[name]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: c["capability"])
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: c["bf16"], raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: c["amx"], raising=False)
    _no_mps(monkeypatch)


def fake_gpu(monkeypatch, name: str) -> None:
    g = GPUS[name]
    major, minor = g["capability"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: g["count"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: g["name"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (g["memory"] - (1 << 30), g["memory"]))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(name=g["name"], major=major, minor=minor,
                                                            total_memory=g["memory"]))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)   # TrainingArguments selects cuda:0
    # what torch answers on that GPU: True on a T4 too, since the default counts emulation
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation or major >= 8)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    _no_mps(monkeypatch)


def stand_in(monkeypatch, name: str) -> None:
    """Make torch answer as on machine ``name`` (see the module docstring), with the hardware rule's wish
    (no ``$SCOTD_PRECISION``: the tests' conftest pins fp32 for host-independent numbers)."""
    monkeypatch.delenv("SCOTD_PRECISION", raising=False)
    (fake_cpu if name in CPUS else fake_gpu)(monkeypatch, name)
