"""Step time of vgrout's GRPO step against `trl.GRPOTrainer(loss_type="dr_grpo")`, interleaved, one run.

    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_vs_trl.py                      # default workload
    flock /tmp/vgrout-heavy.lock .venv/bin/python benchmarks/bench_vs_trl.py --workload long128   # 128-token completions

Every arm sees the same P prompts every step (a fixed prompt set, so sizes do not drift),
samples P x G completions of at most T new tokens at temperature 1, grades them with the
same sandboxed `vgrout.env.Grader` reward, and takes one optimizer step with the k3 KL
anchor at beta. The arms take turns step by step (TRL, vgrout vanilla, vgrout routeA, TRL,
...), so a slow patch on a shared machine hits them all alike; each arm's figure is the
median over `--repeats` steps after `--warmup` untimed ones. torch threads are pinned.

What is timed:
  * TRL: from `on_step_begin` to `on_step_end` of its own training loop (generation,
    reward, old/ref log-probs, loss, backward, optimizer). Logging and data loading fall
    outside this window, which favours TRL.
  * vgrout: one call of the trainer's step, with its own per-phase timings.
The learning rate is tiny (1e-6 by default) so every arm samples from the same starting
policy and completion lengths stay comparable; the mean completion length of every arm is
reported to show it.

Each TRL arm runs in a child process (with its own Grader of the same settings) driven by a
callback that blocks at each step's start until the driver hands it the turn, so TRL's own
`train()` loop runs unmodified and no two arms ever compute at once. Each vgrout arm runs in
a child process of its own too (stepped over a pipe), so every arm's peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class StepTiming:
    """One timed step of one arm."""

    seconds: float
    completion_tokens: int  # generated tokens in the step, eos included, padding excluded
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (vgrout arms only)
    live_rows: int | None = None  # rows in the update after dropping zero-variance groups (vgrout arms only)
    peak_rss_mb: float | None = None  # the arm's process peak resident set so far (grader workers not included)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class BenchSpec:
    """The workload every arm runs."""

    model: str = "toy:default"
    prompts: int = 8
    group: int = 8
    max_new_tokens: int = 16
    beta: float = 1e-3
    lr: float = 1e-6
    seed: int = 0
    threads: int = 2
    adapter_r: int = 4  # vgrout's rank per block; TRL's LoRA arm gets rank 2r (the same trainable width)
    min_new_tokens: int = 0  # eos banned before this many tokens, in every arm (long workloads)
    first_block_reward: bool = False  # every arm's reward grades the completion up to its first closed code block


# Named workloads. long128: the toy model answers in ~11 tokens, so to time long completions
# every arm bans eos for the whole budget (TRL: generation_kwargs min_new_tokens; vgrout: the
# model's generation_config.min_new_tokens, which `vgrout.rollout.generate` honours) and writes
# 128 tokens. What follows the answer is noise that would fail every grade and leave no group
# with a reward spread, so every arm's reward grades the text up to the first closed code
# block (the model's own answer): the same reward function for all, with a live-row share
# close to the default workload's.
WORKLOADS: dict[str, dict] = {
    "default": {"max_new_tokens": 16},
    "long128": {"max_new_tokens": 128, "min_new_tokens": 128, "first_block_reward": True},
}


def first_block(text: str) -> str:
    """The text up to and including the first closing ``` fence (all of it when there is none)."""
    start = text.find("```")
    end = text.find("```", start + 3) if start >= 0 else -1
    return text if end < 0 else text[: end + 3]


class FirstBlockGrader:
    """A grader whose every request is graded on `first_block(completion)` (see WORKLOADS)."""

    def __init__(self, grader) -> None:
        self.grader = grader

    def grade(self, requests: list) -> list:
        from dataclasses import replace

        return self.grader.grade([replace(r, completion=first_block(r.completion)) for r in requests])


def workload_grader(spec: BenchSpec, grader):
    """The grader every arm of this workload rewards with."""
    return FirstBlockGrader(grader) if spec.first_block_reward else grader


# ----------------------------------------------------------------------------------------------
# the shared workload


@dataclass
class World:
    """The prompts every arm trains on: P problems, each with its grading mode, and the system prompt."""

    model_dir: Path
    problems: list  # list[vgrout.types.Problem], P of them
    modes: list[str]  # one per problem
    system_prompt: str


def vgrout_config(spec: BenchSpec, arm: str, grader_workers: int = 2):
    """The trainer's toy preset with the benchmark's workload: n_problems = P, so every step sees the same P prompts."""
    from vgrout.train.config import toy

    return toy().with_overrides({
        "model": spec.model, "arm": arm, "seed": spec.seed, "steps": 10**6,
        "prompts_per_step": spec.prompts,
        "group_size": spec.group, "max_new_tokens": spec.max_new_tokens, "lr": spec.lr, "warmup_steps": 0,
        "cosine": False, "kl_beta": spec.beta, "n_problems": spec.prompts, "adapter_r": spec.adapter_r,
        "grader_workers": grader_workers, "checkpoint_every": 0,
    })


def load_world(spec: BenchSpec) -> World:
    """The exact problems, modes and system prompt the vgrout trainer uses for this workload."""
    from vgrout.env.modes import SYSTEM_PROMPT
    from vgrout.toy.world import toy_world
    from vgrout.train.data import load_problems, partition_modes
    from vgrout.models import toy_name

    cfg = vgrout_config(spec, "vanilla")
    name = toy_name(cfg.model)
    if name is None:
        raise ValueError(f"--model {spec.model!r}: the benchmark runs on a toy world, e.g. toy:default or toy:tiny")
    problems = load_problems(cfg.problems, name, cfg.n_problems, cfg.seed)
    if len(problems) < spec.prompts:
        raise ValueError(f"the toy world has only {len(problems)} train problems; lower --prompts")
    mode_of = partition_modes(problems, cfg.modes, cfg.seed)
    return World(model_dir=Path(toy_world(name, progress=False).model_dir), problems=problems,
                 modes=[mode_of[p.id] for p in problems], system_prompt=cfg.system_prompt or SYSTEM_PROMPT)


# ----------------------------------------------------------------------------------------------
# TRL arm


class TRLArm:
    """`trl.GRPOTrainer` in its own process, running its own `train()`, one step per `step()` call.

    A process of its own because two trainers in one process share (and reset) accelerate's
    global state. The child blocks on the pipe at each step's start, so it uses no CPU while
    another arm runs: there is never more than one torch process computing.
    """

    def __init__(self, name: str, world: World, spec: BenchSpec, total_steps: int, lora: bool, out_dir: Path,
                 grader_workers: int) -> None:
        import multiprocessing as mp

        self.name = name
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_trl_worker, name=f"trl-{name}", daemon=True,
                                 args=(child, name, world, spec, total_steps, lora, out_dir, grader_workers))
        self._proc.start()
        msg = self._conn.recv()  # "ready" once the trainer is built
        if msg != "ready":
            raise RuntimeError(f"TRL arm {name} failed to start:\n{msg}")

    def step(self) -> StepTiming:
        self._conn.send("go")
        msg = self._conn.recv()
        if isinstance(msg, str):
            raise RuntimeError(f"TRL arm {self.name} failed:\n{msg}")
        return StepTiming(**msg)

    def close(self) -> None:
        """Join the child; it exits on its own once TRL's `train()` has run its max_steps."""
        self._proc.join(timeout=120)
        if self._proc.is_alive():
            self._proc.terminate()
            raise RuntimeError(f"TRL arm {self.name} did not finish its train() loop")


def _trl_worker(conn, name: str, world: World, spec: BenchSpec, total_steps: int, lora: bool, out_dir: Path,
                grader_workers: int) -> None:
    """Child process: build a GRPOTrainer on the shared workload and step it when told to."""
    import traceback

    import torch

    torch.set_num_threads(spec.threads)
    try:
        from datasets import Dataset
        from transformers import AutoTokenizer, TrainerCallback
        from trl import GRPOConfig, GRPOTrainer

        from vgrout.env import Grader
        from vgrout.interop.trl import GraderReward, prompt_rows

        grader = Grader(sandbox="auto", workers=grader_workers)
        reward = GraderReward(workload_grader(spec, grader), world.problems, name="vgrout_env")
        seen = {"tokens": 0}

        def counted_reward(prompts, completions, completion_ids, **kwargs):
            seen["tokens"] = sum(len(ids) for ids in completion_ids)
            return reward(prompts, completions, **kwargs)

        counted_reward.__name__ = "vgrout_env"
        rows = prompt_rows(world.problems, world.modes, system_prompt=world.system_prompt)
        args = GRPOConfig(
            output_dir=str(out_dir / name), per_device_train_batch_size=spec.prompts * spec.group,
            num_generations=spec.group, max_completion_length=spec.max_new_tokens, beta=spec.beta,
            loss_type="dr_grpo", scale_rewards="none", learning_rate=spec.lr, lr_scheduler_type="constant",
            max_steps=total_steps, temperature=1.0, top_p=1.0, top_k=0,
            # TRL defaults to gradient checkpointing; on a 1M-parameter model it only adds recompute,
            # so it is off here (TRL's fastest setting, not its default).
            gradient_checkpointing=False,
            report_to="none", logging_steps=10**9, save_strategy="no", use_cpu=True, bf16=False,
            disable_tqdm=True, dataloader_num_workers=0, seed=spec.seed,
            generation_kwargs={"min_new_tokens": spec.min_new_tokens} if spec.min_new_tokens else None,
        )
        peft_config = None
        if lora:
            from peft import LoraConfig

            # rank 2r: the same trainable width as vgrout's two rank-r blocks
            peft_config = LoraConfig(r=2 * spec.adapter_r, lora_alpha=2 * spec.adapter_r, lora_dropout=0.0,
                                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                     "down_proj"])
        clock = {"t0": 0.0}

        class Turn(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                conn.recv()  # "go"
                clock["t0"] = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                conn.send({"seconds": time.perf_counter() - clock["t0"], "completion_tokens": seen["tokens"],
                           "peak_rss_mb": peak_rss_mb()})

        tokenizer = AutoTokenizer.from_pretrained(world.model_dir)
        trainer = GRPOTrainer(model=str(world.model_dir), reward_funcs=counted_reward, args=args,
                              train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                              peft_config=peft_config, callbacks=[Turn()])
        conn.send("ready")
        trainer.train()
        grader.close()
    except BaseException:
        conn.send(traceback.format_exc())


# ----------------------------------------------------------------------------------------------
# vgrout arms


# The step's own per-phase clocks (metrics of `vgrout.train.step.optimise`) -> benchmark phase names.
_STEP_PHASES = {"time_gate": "gate", "time_old_logps": "old_logps", "time_reference": "reference",
                "time_fwd_bwd": "fwd_bwd", "time_optimizer": "optimizer"}


class VgroutArm:
    """vgrout's own loop step (`vgrout.train.loop.grpo_step`) on the benchmark's workload, in this process."""

    def __init__(self, name: str, spec: BenchSpec, grader, run_dir: Path) -> None:
        from vgrout.env.dedup import DedupGrader
        from vgrout.train.loop import GRADE_MEMORY
        from vgrout.train.run import build_run

        self.name = name
        # graded as `vgrout.train.loop.train` grades: each distinct request once per run
        self.grader = DedupGrader(workload_grader(spec, grader), memory=GRADE_MEMORY)
        self.run = build_run(vgrout_config(spec, name), run_dir / name)
        if spec.min_new_tokens:
            self.run.model.generation_config.min_new_tokens = spec.min_new_tokens

    def step(self) -> StepTiming:
        from vgrout.train.loop import grpo_step

        t0 = time.perf_counter()
        metrics, _diag, _samples = grpo_step(self.run, self.grader)  # the oracle diagnostics are dropped here
        seconds = time.perf_counter() - t0
        self.run.step += 1
        phases = {"generate": metrics["time_generate"], "grade": metrics["time_grade"],
                  **{name: metrics[key] for key, name in _STEP_PHASES.items() if key in metrics}}
        phases["other"] = seconds - sum(phases.values())
        tokens = round(metrics["completion_len"] * self.run.cfg.rollouts_per_step)
        return StepTiming(seconds, tokens, phases, live_rows=int(metrics["rows_live"]), peak_rss_mb=peak_rss_mb())


class VgroutChildArm:
    """A `VgroutArm` in its own process (and its own Grader), stepped over a pipe like the TRL arms.

    Its own process so that its peak RSS is its own, as the TRL arms' are; it blocks on the
    pipe between steps, so no two arms ever compute at once.
    """

    def __init__(self, name: str, spec: BenchSpec, run_dir: Path, grader_workers: int) -> None:
        import multiprocessing as mp

        self.name = name
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_vgrout_worker, name=f"vgrout-{name}", daemon=True,
                                 args=(child, name, spec, run_dir, grader_workers))
        self._proc.start()
        msg = self._conn.recv()
        if msg != "ready":
            raise RuntimeError(f"vgrout arm {name} failed to start:\n{msg}")

    def step(self) -> StepTiming:
        self._conn.send("go")
        msg = self._conn.recv()
        if isinstance(msg, str):
            raise RuntimeError(f"vgrout arm {self.name} failed:\n{msg}")
        return StepTiming(**msg)

    def close(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=120)
        if self._proc.is_alive():
            self._proc.terminate()
            raise RuntimeError(f"vgrout arm {self.name} did not stop")


def _vgrout_worker(conn, name: str, spec: BenchSpec, run_dir: Path, grader_workers: int) -> None:
    """Child process: build a vgrout run on the shared workload and step it when told to."""
    import traceback

    import torch

    torch.set_num_threads(spec.threads)
    try:
        from vgrout.env import Grader

        with Grader(sandbox="auto", workers=grader_workers) as grader:
            arm = VgroutArm(name, spec, grader, run_dir)
            conn.send("ready")
            while conn.recv() == "go":
                conn.send(asdict(arm.step()))
    except BaseException:
        conn.send(traceback.format_exc())


# ----------------------------------------------------------------------------------------------
# driver


def run_interleaved(arms: Sequence, warmup: int, repeats: int, log: Callable[[str], None] = print) -> dict:
    """Round-robin one step per arm; returns {arm name: [StepTiming] of the timed repeats}."""
    timings: dict[str, list[StepTiming]] = {a.name: [] for a in arms}
    for i in range(warmup + repeats):
        for arm in arms:
            t = arm.step()
            if i >= warmup:
                timings[arm.name].append(t)
            log(f"  step {i:2d} {arm.name:>14s} {t.seconds:6.3f} s  {t.completion_tokens:5d} tok"
                + ("" if i >= warmup else "  (warmup)"))
    return timings


def summarise(timings: dict[str, list[StepTiming]], n_rollouts: int) -> dict:
    """Median step time, spread, tokens/s and per-phase medians per arm."""
    out = {}
    for name, ts in timings.items():
        secs = sorted(t.seconds for t in ts)
        toks = [t.completion_tokens for t in ts]
        phases = sorted({k for t in ts for k in t.phases})
        out[name] = {
            "median_s": statistics.median(secs),
            "q25_s": secs[len(secs) // 4], "q75_s": secs[(3 * len(secs)) // 4],
            "min_s": secs[0], "max_s": secs[-1], "n": len(secs),
            "mean_completion_len": statistics.mean(toks) / n_rollouts,
            "completion_tok_per_s": statistics.median(t.completion_tokens / t.seconds for t in ts),
            "phases_median_s": {k: statistics.median(t.phases.get(k, 0.0) for t in ts) for k in phases},
        }
        out[name]["ms_per_completion_token"] = 1e3 * statistics.median(t.seconds / t.completion_tokens for t in ts)
        rss = [t.peak_rss_mb for t in ts if t.peak_rss_mb is not None]
        if rss:
            out[name]["peak_rss_mb"] = max(rss)
        live = [t.live_rows for t in ts if t.live_rows is not None]
        if live:
            out[name]["mean_live_row_frac"] = statistics.mean(live) / n_rollouts
    return out


def machine() -> dict:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def markdown(summary: dict, baseline: str) -> str:
    base = summary[baseline]["median_s"]
    lines = ["| arm | median s/step | IQR | mean completion len | completion tok/s | ms/completion tok | live rows "
             "| peak RSS MiB | speed vs " + baseline + " |", "|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        live = f"{s['mean_live_row_frac']:.0%}" if "mean_live_row_frac" in s else "all"
        rss = f"{s['peak_rss_mb']:.0f}" if "peak_rss_mb" in s else "-"
        lines.append(f"| {name} | {s['median_s']:.3f} | {s['q25_s']:.3f}-{s['q75_s']:.3f} | "
                     f"{s['mean_completion_len']:.1f} | {s['completion_tok_per_s']:.0f} | "
                     f"{s.get('ms_per_completion_token', float('nan')):.2f} | {live} | {rss} | "
                     f"{base / s['median_s']:.2f}x |")
    phase_rows = [(n, s["phases_median_s"]) for n, s in summary.items() if s["phases_median_s"]]
    if phase_rows:
        keys = sorted({k for _, p in phase_rows for k in p})
        lines += ["", "| arm | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for n, p in phase_rows:
            lines.append(f"| {n} | " + " | ".join(f"{p.get(k, 0.0):.3f}" for k in keys) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="default", choices=sorted(WORKLOADS),
                    help="default: T 16, the toy model stops after ~11 tokens; long128: 128 tokens, eos banned in "
                         "every arm, reward on the first code block (see WORKLOADS)")
    ap.add_argument("--model", default="toy:default", help="toy:NAME (default toy:default)")
    ap.add_argument("--prompts", type=int, default=8, help="P prompts per step")
    ap.add_argument("--group", type=int, default=8, help="G completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="override the workload's budget")
    ap.add_argument("--beta", type=float, default=1e-3, help="KL anchor weight (both trainers)")
    ap.add_argument("--lr", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the whole run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=12)
    ap.add_argument("--arms", default="trl,trl_lora,vanilla,routeA",
                    help="comma list from trl (full fine-tune), trl_lora, vanilla, routeA")
    ap.add_argument("--workers", type=int, default=2, help="grader workers")
    ap.add_argument("--out", default="runs/bench/bench_vs_trl.json", help="JSON summary path")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    wl = dict(WORKLOADS[args.workload])
    if args.max_new_tokens is not None:
        wl["max_new_tokens"] = args.max_new_tokens
        wl["min_new_tokens"] = min(wl.get("min_new_tokens", 0), args.max_new_tokens)
    spec = BenchSpec(model=args.model, prompts=args.prompts, group=args.group, beta=args.beta, lr=args.lr,
                     threads=args.threads, **wl)
    names = [a for a in args.arms.split(",") if a]
    known = ("trl", "trl_lora", "vanilla", "routeA")
    for n in names:
        if n not in known:
            raise SystemExit(f"--arms: unknown arm {n!r}; expected some of {', '.join(known)}")
    world = load_world(spec)
    total = args.warmup + args.repeats
    arms: list = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            if n in ("trl", "trl_lora"):
                arms.append(TRLArm(n, world, spec, total, lora=(n == "trl_lora"), out_dir=Path(tmp),
                                   grader_workers=args.workers))
            else:
                arms.append(VgroutChildArm(n, spec, Path(tmp), grader_workers=args.workers))
        print(f"{len(arms)} arms, workload {args.workload}: {spec.prompts}x{spec.group} rollouts, "
              f"T<={spec.max_new_tokens} (eos banned before {spec.min_new_tokens}), beta={spec.beta}, "
              f"{args.threads} threads; warmup {args.warmup}, repeats {args.repeats}")
        timings = run_interleaved(arms, args.warmup, args.repeats)
        for a in arms:
            a.close()
    summary = summarise(timings, spec.prompts * spec.group)
    baseline = "trl" if "trl" in summary else names[0]
    result = {"workload": args.workload, "spec": asdict(spec), "warmup": args.warmup, "repeats": args.repeats, "machine": machine(),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "summary": summary,
              "steps": {k: [asdict(t) for t in v] for k, v in timings.items()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=2))
    os.replace(tmp_out, out)
    print(markdown(summary, baseline))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
