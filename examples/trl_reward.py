"""Train the toy world's model with TRL's GRPOTrainer, rewarded by vgrout's sandboxed environment.

    .venv/bin/python examples/trl_reward.py --steps 5 --out runs/trl_example

The reward function grades every completion in the sandbox and hands TRL the reward only;
the oracle's labels (solved? exploited?) go to `<out>/oracle.jsonl`, which this script
summarises at the end (the hack rate TRL itself never sees). Needs the dev extra (`trl`,
`datasets`). The toy world is built on first use (a few minutes, then cached).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="default", help="toy world preset: default or tiny")
    ap.add_argument("--mode", default="run_tests", help="loophole mode shown in every prompt")
    ap.add_argument("--prompts", type=int, default=8, help="distinct prompts per step (P)")
    ap.add_argument("--group", type=int, default=8, help="completions per prompt (G)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--lora-r", type=int, default=8, help="0: full fine-tune")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (keep 1 on a shared CPU)")
    ap.add_argument("--out", default="runs/trl_example")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from vgrout.env import Grader
    from vgrout.interop.trl import GraderReward, JsonlGradeSink, prompt_rows
    from vgrout.toy import TOY_SYSTEM_PROMPT, toy_world

    world = toy_world(args.world)
    problems = world.problems("train")
    rows = prompt_rows(problems, args.mode, system_prompt=TOY_SYSTEM_PROMPT)  # same prompts vgrout trains on
    out = Path(args.out)
    oracle_path = out / "oracle.jsonl"
    oracle_path.unlink(missing_ok=True)
    peft_config = None
    if args.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_r, lora_dropout=0.0, target_modules="all-linear")
    config = GRPOConfig(
        output_dir=str(out), per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
        max_completion_length=args.max_new_tokens, loss_type="dr_grpo", scale_rewards="none", beta=1e-3,
        learning_rate=1e-3 if args.lora_r else 5e-5, max_steps=args.steps, logging_steps=1,
        gradient_checkpointing=False, report_to="none", save_strategy="no", use_cpu=True, bf16=False,
    )
    with Grader(sandbox="auto", workers=2) as grader:
        reward = GraderReward(grader, problems, sink=JsonlGradeSink(oracle_path), name="vgrout_env")
        trainer = GRPOTrainer(model=str(world.model_dir), reward_funcs=reward, args=config,
                              train_dataset=Dataset.from_list(rows),
                              processing_class=AutoTokenizer.from_pretrained(world.model_dir),
                              peft_config=peft_config)
        trainer.train()

    labels = [json.loads(line) for line in oracle_path.read_text().splitlines()]
    by_call: dict[int, list[dict]] = {}
    for row in labels:
        by_call.setdefault(row["call"], []).append(row)
    print("step  reward  solve  hack   (oracle labels, never shown to TRL)")
    for call, rs in sorted(by_call.items()):
        n = len(rs)
        print(f"{call:4d}  {sum(r['reward'] for r in rs) / n:6.3f}  {sum(r['gt_correct'] for r in rs) / n:5.2f}  "
              f"{sum(r['exploited'] for r in rs) / n:5.2f}")


if __name__ == "__main__":
    main()
