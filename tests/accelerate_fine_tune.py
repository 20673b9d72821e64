"""Run by tests/test_scale_out.py under ``accelerate launch`` (and alone): fine_tune a tiny student.

Arguments: MODEL_DIR OUTPUT_DIR GRADIENT_ACCUMULATION_STEPS.  The instances and the config are fixed
here so that the one-process and the two-process runs train on exactly the same data.
"""
import sys

from scotd_kit import prompts
from scotd_kit.training import TrainConfig, fine_tune


def instances(n: int = 16) -> list[dict]:
    return [{"id": f"q{i}", "input": prompts.student_input(f"What is {i} plus {i % 5}?" + " Think." * (i % 4)),
             "targets": [prompts.target(f"{i} plus {i % 5} is {i + i % 5}." + " Yes." * t, str(i + i % 5))
                         for t in range(3)]} for i in range(n)]


def main(model_dir: str, output_dir: str, accumulation: int) -> None:
    config = TrainConfig.small(max_steps=3, per_device_train_batch_size=2, gradient_accumulation_steps=accumulation,
                               learning_rate=1e-3, warmup_steps=0, save_steps=100, logging_steps=1, max_length=64)
    fine_tune(model_dir, instances(), output_dir=output_dir, method="full", config=config, seed=0, resume=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
