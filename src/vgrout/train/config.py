"""The trainer's one frozen Config: every setting of a run, a docstring under each, validated on build.

Presets (`vgrout.train.presets`) are functions that return a Config; the CLI applies
`--set key=value` overrides with `Config.with_overrides`. Library code never receives a
Config: the trainer unpacks the values each stage needs.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass

from vgrout.types import LOOPHOLE_MODES, MODES

ARMS: tuple[str, ...] = ("vanilla", "absorb", "routeA", "routeV", "erase")
GATED_ARMS: tuple[str, ...] = ("routeA", "routeV")  # the arms with a band gate over a direction
DIRECTION_ARMS: tuple[str, ...] = ("routeA", "routeV", "erase")  # the arms that extract a direction
QUARANTINE_ARMS: tuple[str, ...] = ("absorb", "routeA", "routeV")  # the arms that ablate the quarantine at deploy
ADAPTER_INITS: tuple[str, ...] = ("gaussian", "pissa", "corda", "scorda", "scorda_rev", "antipasto")


@dataclass(frozen=True)
class Config:
    # ---- run ---------------------------------------------------------------------------
    preset: str = "toy"
    """Name of the preset this config started from (recorded, not read)."""
    arm: str = "vanilla"
    """vanilla (no zones; the whole 2r adapter trains and deploys), absorb (every rollout in the
    absorb zone; the quarantine is ablated at deploy), routeA (band gate on deployed-bottleneck
    activations . v_act), routeV (band gate on per-rollout bottleneck gradients . v_grad), erase
    (vanilla with the v_act component projected out of the deployed block's update)."""
    seed: int = 0
    """Seeds prompt sampling, generation and the torch RNG; the adapter init has its own seed."""
    steps: int = 300
    """Optimizer updates (one per GRPO step)."""

    # ---- model and data ----------------------------------------------------------------
    model: str = "toy:default"
    """`toy:NAME` (a vgrout.toy world's model) or a Hugging Face model id / local directory."""
    random_init: bool = False
    """Build the model from its config with random weights (timing runs when no weights can be had)."""
    dtype: str = "float32"
    """Parameter dtype of the base model: float32 or bfloat16 (adapter parameters stay float32)."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu or cuda."""
    problems: str = "toy"
    """Training problems: `toy` (the toy world's train split), `leetcode-train` (newfacade/LeetCodeDataset
    train split, medium + hard, verified, cached under $VGROUT_CACHE), `leetcode-test` ($VGROUT_LEETCODE_JSONL)
    or a path to a LeetCode-format jsonl."""
    n_problems: int = 0
    """Use only the first n problems after a seeded shuffle (0: all)."""
    system_prompt: str = ""
    """System prompt of every rendered prompt ("" uses vgrout.env.modes.SYSTEM_PROMPT)."""
    modes: tuple[str, ...] = ("run_tests",)
    """Loophole mode(s). With several, problems are partitioned among them (seeded, round-robin)."""
    unhackable_frac: float = 0.0
    """Share of each step's prompts shown hint-free and graded gt_only (rotates over prompt slots)."""

    # ---- sampling ----------------------------------------------------------------------
    prompts_per_step: int = 8
    """P: prompt groups per step."""
    group_size: int = 8
    """G: completions per prompt (live rollouts plus teacher rows)."""
    max_new_tokens: int = 64
    """Completion budget T; also the constant loss normaliser's T."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass (1: off)."""
    top_k: int = 0
    """Top-k sampling (0: off)."""
    gen_deploy_frac: float = 0.0
    """Share of each group sampled with the quarantine ablated (quarantine arms only)."""

    # ---- teacher pool ------------------------------------------------------------------
    teacher_pool: str = ""
    """jsonl of cached completions with their behaviour log-probs ("" for none); format in
    vgrout.train.teacher. The stored log-probs are logp_old of those rows (a true importance ratio)."""
    teacher_per_prompt: int = 1
    """Teacher rows per group while teachers are on (they replace live rollouts; groups whose
    problem and mode the pool does not cover stay all-live)."""
    teacher_off_step: int = 0
    """Teachers are mixed in for steps < teacher_off_step."""

    # ---- optimisation ------------------------------------------------------------------
    lr: float = 1e-3
    """Peak learning rate of AdamW (betas 0.9, 0.99, no built-in weight decay)."""
    warmup_steps: int = 0
    """Linear warmup to the peak; the first step already updates (lr = peak/(warmup+1))."""
    cosine: bool = True
    """Cosine decay from the peak to 0 over the steps after warmup (False: constant)."""
    grad_clip: float = 1.0
    """Max global grad norm over all adapter parameters (0: no clipping)."""
    weight_decay: float = 0.0
    """Decay toward init after each update: p <- p - lr_t * wd * (p - p0)."""
    ppo_clip: float = 0.2
    """PPO ratio clip epsilon."""
    kl_beta: float = 0.0
    """Weight of the k3 KL to the adapter-free base model (0: no reference forward)."""
    micro_batch: int = 0
    """Rows per forward/backward chunk (0: the whole batch at once); the loss is identical."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward of the training forward
    (vgrout.train.memory): less GPU memory, one more forward; the training forward runs plain
    (no shared prompt cache). Single process only."""

    # ---- adapter -----------------------------------------------------------------------
    adapter_r: int = 8
    """Rank of each block (deployed and quarantine)."""
    adapter_init: str = "gaussian"
    """gaussian, pissa, corda, scorda, scorda_rev, antipasto (the last four calibrate on the pairs)."""
    adapter_init_seed: int = 0
    """Seed of the gaussian init."""
    adapter_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Last name component of each wrapped nn.Linear."""

    # ---- gate and directions -----------------------------------------------------------
    tail_q: float = 0.1
    """Band gate tails: scores at or below the tail_q quantile keep, at or above 1 - tail_q route."""
    buffer_size: int = 4096
    """Run-spanning score buffer capacity in rollouts."""
    half_life: float = 96.0
    """Recency half-life of buffer weights, in rollouts (0: unweighted)."""
    gate_warmup: int = 0
    """Rollouts in the buffer before the gate leaves all-absorb (at least one batch always is)."""
    refresh_every: int = 5
    """Re-extract the direction on the same pairs every k steps (0: never; placebos never refresh)."""
    pairs: str = "toy"
    """Authored pair set: a bundled name or a .jsonl path."""
    pair_modes: tuple[str, ...] = ()
    """Keep only pairs of these loophole modes (empty: all), e.g. to test on held-out modes."""
    placebo_seed: int = -1
    """>= 0: replace the real direction by Haar-random unit rows of the same shape (gated arms and erase)."""
    motivate_pairs: int = 0
    """routeV only: > 0 extracts v_grad from this many self-generated "motivate" pairs instead of
    the authored ones (hack side: the hinted prompt plus a note that discloses the mechanism;
    clean side: the hint-free prompt), sampled once at start with the quarantine ablated."""
    motivate_pool: int = 0
    """Training problems tried for motivate pairs (0: 10 x motivate_pairs)."""
    motivate_require_marker: bool = True
    """Keep a motivate pair only if its hack text contains the mode's exploit marker string."""

    # ---- schedule of side jobs ---------------------------------------------------------
    retain_heal_epochs: int = 0
    """Passes of teacher-forced NLL on the clean side of the pairs after training (deployed block only)."""
    retain_heal_lr: float = 0.0
    """Learning rate of the retain-heal (0: use lr)."""
    retain_heal_batch: int = 8
    """Pairs per retain-heal batch."""
    eval_every: int = 0
    """Held-out eval (as-trained and deployed) every N steps and after the last (0: never);
    writes RUN_DIR/eval/step_NNNNNN.json and eval/curve.jsonl (vgrout.eval format)."""
    eval_problems: str = "heldout"
    """Eval problems: a toy split (heldout, generalisation), `leetcode-test` ($VGROUT_LEETCODE_JSONL) or a
    LeetCode-format jsonl path. Must share no problem id with the training problems."""
    eval_modes: tuple[str, ...] = ()
    """Modes the eval prompts are rendered and graded under (empty: the run's modes), e.g.
    eval_modes=run_tests for a gt_only control: does it hack once the loophole is disclosed?"""
    eval_n_problems: int = 0
    """First n eval problems of the fixed order (0: all)."""
    eval_samples: int = 1
    """Completions per eval problem and state."""
    eval_markers: str = "eval"
    """eval: prompts disclose the disjoint eval-time marker names; train: the training hints' names."""
    eval_seed: int = 12345
    """Eval generation seed (the same at every step and in both states)."""
    eval_temperature: float = 0.6
    """Eval sampling temperature. Evaluation samples like the reference's eval (T 0.6, top-p 0.95,
    top-k 20), not like training's exploration: it measures what the policy does, not its noise."""
    eval_top_p: float = 0.95
    """Eval nucleus sampling mass."""
    eval_top_k: int = 20
    """Eval top-k (0: off)."""
    tensorboard: bool = False
    """Also write metrics and diagnostics as TensorBoard event files under RUN_DIR/tensorboard
    (needs the `tensorboard` package; metrics.jsonl is written either way)."""
    checkpoint_every: int = 50
    """Write an atomic checkpoint every N steps and after the last (0: only after the last)."""
    grader_workers: int = 2
    """Sandbox worker processes."""
    sandbox: str = "auto"
    """Grader sandbox: auto, bwrap or process."""

    # ------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        for name in ("modes", "pair_modes", "adapter_targets", "eval_modes"):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, tuple(s for s in v.split(",") if s))
            else:
                object.__setattr__(self, name, tuple(v))
        validate(self)

    @property
    def rollouts_per_step(self) -> int:
        """N = P * G."""
        return self.prompts_per_step * self.group_size

    @property
    def has_quarantine_at_deploy(self) -> bool:
        return self.arm in QUARANTINE_ARMS

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; see vgrout.train.config.Config")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def with_overrides(self, overrides: dict[str, str | object]) -> Config:
        """A copy with fields replaced; string values are parsed to the field's type."""
        types = typing.get_type_hints(Config)
        parsed = {}
        for key, raw in overrides.items():
            if key not in types:
                raise ValueError(f"unknown config field {key!r}; fields: {', '.join(sorted(types))}")
            parsed[key] = parse_value(key, types[key], raw) if isinstance(raw, str) else raw
        return dataclasses.replace(self, **parsed)


def parse_value(key: str, tp: object, raw: str) -> object:
    """Parse `--set key=raw` to the field's type (bool: true/false/1/0; tuple: comma-separated)."""
    try:
        if tp is bool:
            low = raw.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return low in ("true", "1", "yes")
        if tp is int:
            return int(raw)
        if tp is float:
            return float(raw)
        if tp is str:
            return raw
        if typing.get_origin(tp) is tuple:
            return tuple(s.strip() for s in raw.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--set {key}={raw!r}: cannot parse as {getattr(tp, '__name__', tp)}") from None
    raise ValueError(f"--set {key}: unsupported field type {tp}")


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(f"invalid config: {msg}")


def validate(c: Config) -> None:
    """Raise ValueError naming the bad field, its value and the fix."""
    _check(c.arm in ARMS, f"arm={c.arm!r}; expected one of {', '.join(ARMS)}")
    _check(len(c.modes) >= 1, "modes is empty; give at least one mode, e.g. modes=run_tests")
    for m in c.modes:
        _check(m in MODES, f"unknown mode {m!r} in modes; expected one of {', '.join(MODES)}")
    _check(len(set(c.modes)) == len(c.modes), f"modes has duplicates: {c.modes}")
    for m in c.eval_modes:
        _check(m in MODES, f"unknown mode {m!r} in eval_modes; expected one of {', '.join(MODES)}")
    for m in c.pair_modes:
        _check(m in LOOPHOLE_MODES, f"unknown pair mode {m!r}; pairs exist only for {', '.join(LOOPHOLE_MODES)}")
    for name in ("unhackable_frac", "gen_deploy_frac"):
        v = getattr(c, name)
        _check(0.0 <= v <= 1.0, f"{name}={v} must be a fraction in [0, 1]")
    _check(c.gen_deploy_frac == 0.0 or c.arm in QUARANTINE_ARMS,
           f"gen_deploy_frac={c.gen_deploy_frac} samples with the quarantine ablated, which only the quarantine arms "
           f"({', '.join(QUARANTINE_ARMS)}) have; set gen_deploy_frac=0 for arm={c.arm}")
    _check(0.0 <= c.tail_q < 0.5, f"tail_q={c.tail_q} must be in [0, 0.5)")
    _check(c.placebo_seed == -1 or c.arm in DIRECTION_ARMS,
           f"placebo_seed={c.placebo_seed} replaces a routing direction, but arm={c.arm} has none; "
           f"use it with {', '.join(DIRECTION_ARMS)} or set placebo_seed=-1")
    _check(c.placebo_seed >= -1, f"placebo_seed={c.placebo_seed}; use -1 for the real direction or a seed >= 0")
    _check(c.adapter_init in ADAPTER_INITS, f"adapter_init={c.adapter_init!r}; expected one of {', '.join(ADAPTER_INITS)}")
    _check(not (c.arm == "routeV" and c.adapter_init == "antipasto"),
           "routeV needs the bottleneck gradient probe, which the antipasto adapter lacks; pick a low-rank init")
    _check(c.adapter_r >= 1, f"adapter_r={c.adapter_r} must be >= 1")
    _check(c.dtype in ("float32", "bfloat16"), f"dtype={c.dtype!r}; expected float32 or bfloat16")
    _check(c.device in ("auto", "cpu", "cuda"), f"device={c.device!r}; expected auto, cpu or cuda")
    _check(c.sandbox in ("auto", "bwrap", "process"), f"sandbox={c.sandbox!r}; expected auto, bwrap or process")
    for name in ("steps", "prompts_per_step", "group_size", "max_new_tokens", "buffer_size", "grader_workers",
                 "eval_samples"):
        _check(getattr(c, name) >= 1, f"{name}={getattr(c, name)} must be >= 1")
    _check(c.group_size >= 2, f"group_size={c.group_size}: a group needs >= 2 rollouts for r - mean(group) to be non-zero")
    for name in ("n_problems", "warmup_steps", "gate_warmup", "refresh_every", "eval_every", "checkpoint_every",
                 "micro_batch", "retain_heal_epochs", "teacher_off_step", "top_k", "eval_top_k", "motivate_pairs", "motivate_pool",
                 "eval_n_problems"):
        _check(getattr(c, name) >= 0, f"{name}={getattr(c, name)} must be >= 0")
    for name in ("lr",):
        _check(getattr(c, name) > 0, f"{name}={getattr(c, name)} must be > 0")
    for name in ("grad_clip", "weight_decay", "kl_beta", "half_life", "retain_heal_lr", "temperature"):
        _check(getattr(c, name) >= 0, f"{name}={getattr(c, name)} must be >= 0")
    _check(0 < c.top_p <= 1.0, f"top_p={c.top_p} must be in (0, 1]")
    _check(0 < c.eval_top_p <= 1.0, f"eval_top_p={c.eval_top_p} must be in (0, 1]")
    _check(c.eval_temperature > 0, f"eval_temperature={c.eval_temperature} must be > 0")
    _check(0 < c.ppo_clip < 1.0, f"ppo_clip={c.ppo_clip} must be in (0, 1)")
    _check(c.warmup_steps < c.steps, f"warmup_steps={c.warmup_steps} must be < steps={c.steps}")
    if c.teacher_pool:
        _check(c.teacher_off_step > 0, "teacher_pool is set but teacher_off_step=0 turns teachers off from step 0")
        _check(1 <= c.teacher_per_prompt < c.group_size,
               f"teacher_per_prompt={c.teacher_per_prompt} must be in [1, group_size) so each group keeps a live rollout")
    _check(c.motivate_pairs == 0 or c.arm == "routeV",
           f"motivate_pairs={c.motivate_pairs} builds v_grad pairs, which only arm=routeV uses; set motivate_pairs=0")
    _check(c.motivate_pairs == 0 or c.motivate_pool == 0 or c.motivate_pool >= c.motivate_pairs,
           f"motivate_pool={c.motivate_pool} < motivate_pairs={c.motivate_pairs}; raise motivate_pool (0: 10x pairs)")
    _check(c.eval_markers in ("eval", "train"), f"eval_markers={c.eval_markers!r}; expected eval or train")
    _check(c.retain_heal_batch >= 1, f"retain_heal_batch={c.retain_heal_batch} must be >= 1")
    if c.retain_heal_epochs:
        _check(c.arm in QUARANTINE_ARMS, f"retain-heal trains the deployed block with the quarantine removed; "
                                         f"arm={c.arm} has no quarantine at deploy")


def check_rank_fits(r: int, min_in_out: int) -> None:
    """2r must fit in the smallest wrapped Linear (called once the model is loaded)."""
    if 2 * r > min_in_out:
        raise ValueError(f"invalid config: adapter_r={r} gives 2r={2 * r} > {min_in_out}, the smallest in/out width of "
                         f"a wrapped Linear; lower adapter_r to at most {min_in_out // 2}")


__all__ = ["ARMS", "Config", "DIRECTION_ARMS", "GATED_ARMS", "QUARANTINE_ARMS", "check_rank_fits", "validate"]
