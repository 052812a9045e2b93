"""`vgrout study`: the study matrix (its arms, controls and baselines x seeds), resumable, in one report.

    toy world (cached) -> [--fork-at S: one vanilla prefix per seed, trained to step S]
    -> every (arm, seed): trained from scratch, or branched from its seed's prefix, or (a twin:
       vanilla when absorb has the same config) written from that run (`vgrout.twin`)
    -> relearning attack on every run (deployed start) and on vanilla (base start)
    -> the base model evaluated once (STUDY/base_eval.json, `evaluate_base`)
    -> STUDY/report.md + summary.json (vgrout.report.compare, with the oracle early-stop
       reference, the relearning rows and the branching table) -> findings on stdout

Runs are reused through `train_one`: a finished run is kept, a killed one
resumes from its last checkpoint, so a second call trains nothing.

`--jobs N` runs N units (a seed's prefix, or one run with its relearning attacks) at a time in
spawned worker processes (`vgrout.jobs.run_tasks`), the longest chain of work first; a branch
starts after its prefix, a twin after its source, and every run is deterministic from its
config, so the results do not depend on N.

Branching (`--fork-at STEP`): a branch loads the prefix's adapter, optimizer, schedule, step
and RNG (`StartFrom`), so the vanilla branch is exactly the vanilla run and every other arm
differs from it only after STEP (paired by seed). A branch must match the prefix in every
setting except how the update is routed or prompted (FORK_FREE); an arm that differs
elsewhere (absorb+scorda's adapter init, gt_only's loophole-free modes) trains from scratch,
and the report says so and why.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import time
from pathlib import Path

from vgrout.rundir import BASE_EVAL, GRADE_STORE, STUDY, config_path, eval_dir, has_config, is_complete, relearn_dir, step_dir

# arm label -> (seed -> Config overrides on top of the preset). Placebo draws vary with the seed.
STUDY_ARMS: dict[str, object] = {
    "vanilla": lambda seed: {"arm": "vanilla"},
    "absorb": lambda seed: {"arm": "absorb"},
    "routeA": lambda seed: {"arm": "routeA"},
    "routeA-placebo": lambda seed: {"arm": "routeA", "placebo": True},  # Haar seed derived from the run seed
    "routeV": lambda seed: {"arm": "routeV"},
    "routeV-placebo": lambda seed: {"arm": "routeV", "placebo": True},
    "absorb+scorda": lambda seed: {"arm": "absorb", "adapter_init": "scorda"},
    "gt_only": lambda seed: {"arm": "vanilla", "modes": ("gt_only",)},  # the loophole pays nothing
    "inoculation": lambda seed: {"arm": "inoculation"},
    "oracle": lambda seed: {"arm": "oracle"},  # uses the oracle's labels: an upper bound, not a method
}
DEFAULT_PLACEBOS = 3  # placebo directions per seed in the study: the placebo is a distribution, not one sign


def placebo_draw(label: str) -> tuple[str, int]:
    """"routeA-placebo2" -> ("routeA-placebo", 2); any other label -> (label, 0)."""
    m = re.fullmatch(r"(.+-placebo)(\d+)", label)
    if m and m.group(1) in STUDY_ARMS and int(m.group(2)) > 0:
        return m.group(1), int(m.group(2))
    return label, 0


def is_study_arm(label: str) -> bool:
    return placebo_draw(label)[0] in STUDY_ARMS


def with_placebo_draws(arms: tuple[str, ...], k: int) -> tuple[str, ...]:
    """Each placebo arm followed by its further draws: ("routeA-placebo",), 3 -> (..., "routeA-placebo1",
    "routeA-placebo2"). k = 1 leaves the arms as they are."""
    if k < 1:
        raise ValueError(f"--placebos {k} must be >= 1")
    out: list[str] = []
    for a in arms:
        out.append(a)
        if a.endswith("-placebo") and a in STUDY_ARMS:
            out += [f"{a}{i}" for i in range(1, k) if f"{a}{i}" not in arms]
    return tuple(dict.fromkeys(out))
# Config fields a branch may change relative to the prefix it forks from: the arm and what
# only the arm reads, plus bookkeeping that does not touch the trained state.
FORK_FREE = frozenset({"arm", "placebo", "placebo_seed", "placebo_draw", "inoculation_prompt", "checkpoint_every", "eval", "preset"})
HELDOUT_MODES_PRESET = "heldout-modes"  # the multi-mode preset (held-out loophole modes)


def run_is_finished(run_dir: Path, steps: int) -> bool:
    """A run is done when its final-step eval exists (the trainer writes it after the last checkpoint)."""
    return (eval_dir(run_dir) / f"step_{steps:06d}.json").is_file()


def saved_config(run_dir: Path) -> dict:
    """RUN_DIR/config.json as this version's Config reads it: a field added since the run was
    written takes its default (which reproduces the old behaviour), so the run still counts as
    the same run; a field this version does not know is an error (Config.from_dict)."""
    from vgrout.train.config import Config

    return Config.from_dict(json.loads(config_path(run_dir).read_text())).resolved().to_dict()


def same_run(cfg, run_dir: Path, start=None) -> bool:
    """Does RUN_DIR hold this run (config, derived seeds resolved, and start)? A config.json this
    version cannot read is another run."""
    from vgrout.train.run import read_start

    try:
        saved = saved_config(run_dir)
    except (ValueError, TypeError, json.JSONDecodeError):
        return False
    return saved == cfg.resolved().to_dict() and read_start(run_dir) == start


def check_same_run(cfg, run_dir: Path, start=None) -> None:
    """Refuse to reuse or resume RUN_DIR when it holds a run with another config or start."""
    if not same_run(cfg, run_dir, start):
        raise ValueError(f"{run_dir} holds a run with another config or start; "
                         "pass --fresh to start over, or another --out")


def train_one(cfg, run_dir: Path, start=None, grade_store: Path | None = None) -> str:
    """Train (or resume, or skip) one run; returns what was done. `start` (a
    `vgrout.train.run.StartFrom`) starts a new run from another run's checkpoint (`vgrout study --fork-at`).
    `grade_store`: the matrix's shared grades (`vgrout.env.dedup.GradeStore`)."""
    from vgrout.train.loop import train

    if has_config(run_dir):
        check_same_run(cfg, run_dir, start)
        if run_is_finished(run_dir, cfg.steps):
            return "cached"
        train(None, run_dir, resume=True, progress=False, grade_store=grade_store)
        return "resumed"
    train(cfg, run_dir, progress=False, start=start, grade_store=grade_store)
    return "trained"


def evaluate_base(cfg, path: Path, grade_store: Path | None = None) -> Path:
    """The base model (no adapter: what every arm starts from) on the runs' held-out problems with
    their eval settings, written once to `path` as a "vgrout.eval/1" result; the report's base row
    and the first point of every curve. Recomputed when the eval-relevant config changes.
    `grade_store`: the matrix's shared grades (its verdicts are the runs' too)."""
    from types import SimpleNamespace

    from vgrout.env import Grader
    from vgrout.env.dedup import DedupGrader, GradeStore
    from vgrout.eval.results import read_eval, write_json_atomic
    from vgrout.models import load_model
    from vgrout.train.arms import arm_for
    from vgrout.train.loop import HeldoutEval

    cfg = cfg.with_overrides({"arm": "vanilla", "placebo": False, "placebo_seed": -1, "placebo_draw": 0})
    cfg = cfg.resolved()  # no quarantine: one sampling pass; the eval seed derived from the run seed
    key = {k: v for k, v in cfg.to_dict().items() if k != "seed"}
    if path.is_file() and read_eval(path).get("run", {}).get("config") == key:
        return path
    hook = HeldoutEval(cfg, arm_for("vanilla"))
    model, tok = load_model(cfg.model, cfg.dtype, cfg.device, cfg.random_init)
    with Grader(sandbox=cfg.sandbox, workers=cfg.grader_workers) as sandboxed, \
            (GradeStore(grade_store) if grade_store is not None else contextlib.nullcontext()) as store:
        grader = DedupGrader(sandboxed, store=store)
        result = hook.evaluate(SimpleNamespace(model=model, tokenizer=tok, adapter=None), grader)
    result.update({"step": 0, "run_dir": None, "checkpoint": None, "run": {"arm": "base", "config": key}})
    write_json_atomic(path, result)
    return path


def arm_config(base, label: str, seed: int):
    """The Config of one (arm, seed) of the study. gt_only is evaluated on the hackable modes."""
    name, draw = placebo_draw(label)
    if name not in STUDY_ARMS:
        raise ValueError(f"unknown study arm {label!r}; choose from {', '.join(STUDY_ARMS)} (a placebo's further "
                         "draws: routeA-placebo1, routeA-placebo2, ...)")
    over = dict(STUDY_ARMS[name](seed), seed=seed, **({"placebo_draw": draw} if draw else {}))
    cfg = base.with_overrides(over)
    if label == "gt_only":  # does it hack once the loophole is disclosed? (eval on the preset's modes)
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, modes=cfg.eval.modes or base.modes))
    return cfg.resolved()  # the derived init / placebo seeds, as config.json records them


def fork_mismatch(prefix, cfg) -> list[str]:
    """Fields outside FORK_FREE where `cfg` differs from the prefix's Config (empty: it can branch)."""
    a, b = prefix.to_dict(), cfg.to_dict()
    return [f"{k} {b[k]!r} vs the prefix's {a[k]!r}" for k in sorted(a) if k not in FORK_FREE and a[k] != b[k]]


def train_prefix(cfg, run_dir: Path, fork_at: int, grade_store: Path | None = None) -> tuple[Path, str]:
    """The shared vanilla prefix of one seed: `cfg` (vanilla) trained to step `fork_at`; returns
    (its checkpoint, what was done)."""
    from vgrout.train.loop import train

    cfg = dataclasses.replace(cfg, checkpoint_every=fork_at)
    ckpt = step_dir(run_dir, fork_at)
    if is_complete(ckpt):
        what = "cached"
    elif has_config(run_dir):
        if not same_run(cfg, run_dir):
            raise ValueError(f"{run_dir} holds a prefix with another config; pass --fresh or another --out")
        train(None, run_dir, resume=True, stop_after=fork_at, progress=False, grade_store=grade_store)
        what = "resumed"
    else:
        train(cfg, run_dir, stop_after=fork_at, progress=False, grade_store=grade_store)
        what = "trained"
    if not is_complete(ckpt):
        raise RuntimeError(f"the prefix {run_dir} stopped without its step-{fork_at} checkpoint")
    return ckpt, what


@dataclasses.dataclass(frozen=True)
class Unit:
    """One job of the matrix: a seed's vanilla prefix, or one (arm, seed) run and its relearning attacks."""

    name: str  # the run dir's name under --out: prefix_s0, routeA_s0
    cfg: object  # its Config
    run_dir: Path
    fork_at: int = 0  # > 0: a prefix, trained to this step
    start: object = None  # StartFrom (a branch of its seed's prefix) or None
    after: str | None = None  # the unit that must finish first (the seed's prefix)
    note: str = ""  # appended to its log line (why it trains from scratch)
    relearn: tuple[str, ...] = ()  # relearning-attack starts run after it, in the same process
    twin_of: Path | None = None  # written from this finished run instead of trained (vgrout.twin)
    cost: float = 1.0  # relative run time, for the scheduler (vgrout.jobs: the longest work first)


def unit_cost(cfg, steps: int) -> float:
    """A run's time relative to a zone-free run (vanilla, gt_only) of the preset's steps, for `steps` of
    them. Per run, from the demo console of 2026-12-07 with the shared grade store
    (docs/results/demo-2026-12-07-store/): gt_only 44-49 s, oracle 48-55 s, absorb 59-60 s,
    routeA-placebo 62-74 s, routeA 83-100 s (the first runs find the store empty); routeV ~1.9x
    routeA (study console, 2026-12-02). Only the scheduler reads it (`vgrout.jobs.next_task`)."""
    from vgrout.train.arms import arm_for

    arm = arm_for(cfg.arm)
    if arm.features == "act":
        per_step = 1.4 if cfg.placebo else 1.9
    elif arm.features == "grad":
        per_step = 3.6
    else:  # zones split each forward by zone (absorb, oracle); vanilla and inoculation run zone-free
        per_step = {"absorb": 1.25, "oracle": 1.1}.get(arm.name, 1.0)
    return per_step * steps / max(1, cfg.steps) if steps else 0.0


def plan_matrix(out: Path, base, arms: tuple[str, ...], seeds: tuple[int, ...], fork_at: int,
                relearn_steps: int, twins: bool = True) -> tuple[list[Unit], dict[str, str]]:
    """The matrix as units in the sequential order (per seed: its prefix, then every arm), and the
    arms that cannot branch from the prefix (label -> why). `twins`: an arm whose run is another
    arm's run bit for bit (vanilla, when absorb is in the matrix with the same config) is written
    from it after it finishes (`vgrout.twin`) rather than trained."""
    from vgrout.train.run import StartFrom
    from vgrout.twin import twin_mismatch

    units: list[Unit] = []
    scratch: dict[str, str] = {}
    for seed in seeds:
        prefix_cfg = prefix = None
        if fork_at:
            prefix_cfg = arm_config(base, "vanilla", seed)
            prefix = Unit(f"prefix_s{seed}", prefix_cfg, out / f"prefix_s{seed}", fork_at=fork_at,
                          cost=unit_cost(prefix_cfg, fork_at))
            units.append(prefix)
        for label in arms:
            cfg = arm_config(base, label, seed)
            start = after = None
            if prefix is not None:
                diff = fork_mismatch(prefix_cfg, cfg)
                if diff:
                    scratch[label] = "cannot branch from the vanilla prefix: " + "; ".join(diff)
                else:
                    start, after = StartFrom(step_dir(prefix.run_dir, fork_at).resolve(), trainer_state=True), prefix.name
            relearn = (("deployed", "base") if label == "vanilla" else ("deployed",)) if relearn_steps else ()
            note = " (from scratch: " + scratch[label] + ")" if label in scratch else ""
            steps = cfg.steps - (fork_at if start is not None else 0)
            units.append(Unit(f"{label}_s{seed}", cfg, out / f"{label}_s{seed}", start=start, after=after, note=note,
                              relearn=relearn, cost=unit_cost(cfg, steps)))
        if twins:  # e.g. vanilla from absorb: the same run, trained once
            runs = {i: u for i, u in enumerate(units) if u.name in {f"{label}_s{seed}" for label in arms}}
            for i, unit in runs.items():
                source = next((u for u in runs.values() if u is not unit and u.start == unit.start
                               and not twin_mismatch(u.cfg, unit.cfg)), None)
                if source is not None:
                    units[i] = dataclasses.replace(unit, twin_of=source.run_dir, after=source.name, cost=0.02)
    return units, scratch


def run_unit(unit: Unit, relearn: tuple[int, int, int], grade_store: Path | None = None) -> tuple[str, list[str]]:
    """Train (or resume, or skip) one unit, then its relearning attacks; returns (what was done, log lines
    of the attacks). `relearn`: (steps, every, n_problems); `grade_store`: the matrix's shared grades."""
    if unit.fork_at:
        return train_prefix(unit.cfg, unit.run_dir, unit.fork_at, grade_store)[1], []
    from vgrout.relearn import relearn_run

    what = (write_one(unit) if unit.twin_of is not None
            else train_one(unit.cfg, unit.run_dir, start=unit.start, grade_store=grade_store))
    steps, every, n_problems = relearn
    lines = []
    for s in unit.relearn:
        e = relearn_run(unit.run_dir, steps, start=s, every=every, n_problems=n_problems, grade_store=grade_store)
        reach = e["steps_to_threshold"]
        lines.append(f"    relearn from {s}: hack {e['curve'][0]['hack']:.2f} -> {e['curve'][-1]['hack']:.2f}, "
                     f"reaches {e['threshold']} " + (f"at step {reach}" if reach is not None else
                                                    f"not within {steps} steps"))
    return what, lines


def write_one(unit: Unit) -> str:
    """A twin unit: reuse its finished directory, else write it from its source run; what was done."""
    from vgrout.twin import source_finished, write_twin

    if has_config(unit.run_dir):
        check_same_run(unit.cfg, unit.run_dir, unit.start)
        if source_finished(unit.run_dir, unit.cfg):  # kept as it is (with its relearning attacks)
            return "cached"
    write_twin(unit.twin_of, unit.run_dir, unit.cfg)
    return f"written from {unit.twin_of.name} (the same training, bit for bit)"


def unit_done(unit: Unit, relearn_steps: int) -> bool:
    """Finished on disk (its final eval, or the prefix's checkpoint, and every attack's final eval): the
    parallel scheduler reuses it in the main process rather than start a worker to say "cached"."""

    if unit.fork_at:
        return is_complete(step_dir(unit.run_dir, unit.fork_at))
    if has_config(unit.run_dir) and not same_run(unit.cfg, unit.run_dir, unit.start):
        return False  # another run there: a worker's train_one refuses it, loudly, as with --jobs 1
    return run_is_finished(unit.run_dir, unit.cfg.steps) and all(
        run_is_finished(relearn_dir(unit.run_dir, s), relearn_steps) for s in unit.relearn)


def dependency_order(units: list[Unit]) -> list[Unit]:
    """`units` in their order, except that each comes after the unit it waits for (a twin after its source)."""
    done: set[str] = set()
    out: list[Unit] = []
    pending = list(units)
    while pending:
        unit = next((u for u in pending if u.after is None or u.after in done), None)
        if unit is None:
            raise ValueError(f"units wait in a cycle or for unknown units: {[(u.name, u.after) for u in pending]}")
        pending.remove(unit)
        out.append(unit)
        done.add(unit.name)
    return out


def default_jobs(n_runs: int) -> int:
    """--jobs when not given: one single-thread run per usable CPU, at most one per run."""
    import os

    return max(1, min(len(os.sched_getaffinity(0)), n_runs))


def check_fork_at(fork_at: int, steps: int) -> None:
    """--fork-at is 0 (every run from scratch) or a step before the last."""
    if fork_at and not 0 < fork_at < steps:
        raise ValueError(f"--fork-at {fork_at} must be in [1, steps={steps}); pass --fork-at 0 to train every run "
                         "from scratch")


def run_matrix(out: Path, base, arms: tuple[str, ...], seeds: tuple[int, ...], *, fork_at: int = 0,
               relearn_steps: int = 0, relearn_every: int = 1, relearn_n_problems: int = 16,
               jobs: int = 1, threads: int = 1, twins: bool = True, log=print) -> list[Path]:
    """Train (or reuse) every (arm, seed) under `out`, the relearning attacks too; returns the run dirs
    in (seed, arm) order. jobs > 1: that many runs at a time in worker processes (`vgrout.jobs.run_tasks`),
    each with `threads` torch threads; every run is deterministic from its config, so the results
    are those of jobs=1. `twins`: see `plan_matrix` (False: every run trained)."""
    import functools

    from vgrout.io import write_json_atomic
    from vgrout.jobs import run_tasks
    from vgrout.train.cli import pin_threads

    check_fork_at(fork_at, base.steps)
    if jobs < 1:
        raise ValueError(f"--jobs {jobs} must be >= 1")
    out.mkdir(parents=True, exist_ok=True)
    units, scratch = plan_matrix(out, base, arms, seeds, fork_at, relearn_steps, twins=twins)
    relearn = (relearn_steps, relearn_every, relearn_n_problems)
    store = out / GRADE_STORE  # one grade store for the matrix: a completion any run graded is not run again

    def done(unit: Unit, result: tuple[str, list[str]], seconds: float) -> None:
        what, lines = result
        head = f"{unit.name} (vanilla to step {fork_at})" if unit.fork_at else unit.name
        log(f"  {head}: {what}{unit.note} ({seconds:.0f} s)")
        for line in lines:
            log(line)

    if jobs == 1:  # in this process, one after another (the plan's order, a unit after the one it waits for)
        for unit in dependency_order(units):
            t = time.perf_counter()
            done(unit, run_unit(unit, relearn, store), time.perf_counter() - t)
    else:  # worker processes, `threads` torch threads each; a branch starts once its prefix is done
        run_tasks(units, functools.partial(run_unit, relearn=relearn, grade_store=store), jobs=jobs, on_done=done,
                  init=functools.partial(pin_threads, threads), inline=lambda u: unit_done(u, relearn_steps))
    write_json_atomic(out / STUDY, {
        "preset": base.preset, "steps": base.steps, "arms": list(arms), "seeds": list(seeds), "fork_at": fork_at,
        "from_scratch": scratch, "relearn_steps": relearn_steps, "relearn_every": relearn_every,
        "relearn_n_problems": relearn_n_problems,
        "twins": {u.name: u.twin_of.name for u in units if u.twin_of is not None}}, indent=2)
    return [u.run_dir for u in units if not u.fork_at]


def report_section(report: Path, heading: str) -> str:
    """One section of the report (by its heading, without the '## '), for the console."""
    text = report.read_text()
    if f"## {heading}" not in text:
        return f"(the report has no {heading!r} section)"
    body = text.split(f"## {heading}", 1)[1]
    return body.split("\n## ", 1)[0].strip()


@dataclasses.dataclass(frozen=True)
class MatrixDefaults:
    """What `vgrout study` and `vgrout demo` run when a flag is not given: the two are one runner
    (`run_study`) and one parser (`add_matrix_args`) with two sets of defaults."""

    out: str
    arms: tuple[str, ...]
    seeds: str  # a count ("5": seeds 0..4) or a comma-separated list ("0,1,2")
    placebos: int
    relearn_steps: int
    eval_last_only: bool = False  # one held-out eval, after the last step (unless --eval-every or --set eval.every)


# The study's default arms: the method, its placebo draws, the oracle reference and the controls
# (vanilla, absorb, absorb+scorda, gt_only). routeV (its gate fails on this world, docs/training.md,
# and each run costs ~1.9x routeA's) and inoculation (another defence, not a routing control) run
# when asked for (--arms), so that the default study fits its hour on 2 vCPUs.
STUDY_DEFAULT_ARMS = ("vanilla", "absorb", "routeA", "routeA-placebo", "absorb+scorda", "gt_only", "oracle")
STUDY_DEFAULTS = MatrixDefaults(out="runs/study", arms=STUDY_DEFAULT_ARMS, seeds="5", placebos=DEFAULT_PLACEBOS,
                                relearn_steps=10)


def run_study(out: Path, preset_name: str, arms: tuple[str, ...], seeds: tuple[int, ...], overrides: dict[str, str],
              *, fork_at: int = 0, relearn_steps: int = 0, relearn_every: int = 1, relearn_n_problems: int = 16,
              heldout_modes: bool = False, heldout_arms: tuple[str, ...] = (), heldout_seeds: tuple[int, ...] = (),
              fresh: bool = False, threads: int = 1, build_threads: int = 2, jobs: int | None = None,
              twins: bool = True, placebos: int = DEFAULT_PLACEBOS, eval_last_only: bool = False) -> Path:
    """The matrix behind `vgrout study` and `vgrout demo`: the toy world, the base model's eval, every
    (arm, seed) with its baselines, the report and its console summary; returns the (main) report's
    path. `jobs`: runs at a time (None: `default_jobs`); `placebos`: placebo directions per seed of
    each placebo arm of the main matrix (`with_placebo_draws`); `eval_last_only`: evaluate once, after
    the last step, unless `overrides` sets eval.every. Raises ValueError on bad arguments."""
    import shutil

    from vgrout.report.compare import build_report
    from vgrout.toy import toy_world
    from vgrout.train.cli import pin_threads
    from vgrout.train.config import preset

    heldout_arms, heldout_seeds = heldout_arms or arms, heldout_seeds or seeds
    arms = with_placebo_draws(arms, placebos)
    unknown = [a for a in (*arms, *heldout_arms) if not is_study_arm(a)]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; choose from {', '.join(STUDY_ARMS)}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs {jobs} must be >= 1")
    if not seeds:
        raise ValueError("no seeds; give a count (5) or a comma-separated list (0,1,2)")
    if fresh and out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    last_only = eval_last_only and "eval.every" not in overrides and "eval_every" not in overrides

    def configured(name: str):  # the preset with the overrides; one eval after its own last step when asked
        cfg = preset(name).with_overrides(overrides)
        return cfg.with_overrides({"eval.every": str(cfg.steps)}) if last_only else cfg

    studies = [(out, configured(preset_name), arms, seeds)]
    if heldout_modes:  # the held-out-mode sub-study: heldout_arms x heldout_seeds on the multi-mode preset
        studies.append((out / "heldout-modes", configured(HELDOUT_MODES_PRESET), heldout_arms, heldout_seeds))
    for _, cfg, _, _ in studies:  # before any work: a fork point past the last step is a flag error
        check_fork_at(fork_at, cfg.steps)
    report = None
    for where, cfg, arms, seeds in studies:
        print(f"[1/4] {where}: toy world (installed from the prebuilt world shipped with vgrout, or built once; "
              "then cached)" if cfg.model.startswith("toy:") else f"[1/4] {where}: model {cfg.model}", flush=True)
        if cfg.model.startswith("toy:"):
            pin_threads(build_threads)  # pretraining's batch-64 matmuls gain from a second thread; GRPO steps do not
            toy_world(cfg.model.split(":", 1)[1], progress=True)
        pin_threads(threads)
        print("[2/4] base model eval (held-out problems, before any training)", flush=True)
        where.mkdir(parents=True, exist_ok=True)
        base_eval = evaluate_base(cfg.with_overrides({"seed": seeds[0]}), where / BASE_EVAL, where / GRADE_STORE)
        n_jobs = default_jobs(len(arms) * len(seeds)) if jobs is None else jobs
        print(f"[3/4] {len(arms)} arms x {len(seeds)} seeds, {cfg.steps} steps each"
              + (f", branched from a vanilla prefix at step {fork_at}" if fork_at else "")
              + f", {n_jobs} at a time (--jobs {n_jobs}, {threads} torch thread(s) each)", flush=True)
        t_train = time.perf_counter()
        run_dirs = run_matrix(where, cfg, arms, seeds, fork_at=fork_at, relearn_steps=relearn_steps,
                              relearn_every=relearn_every, relearn_n_problems=relearn_n_problems, jobs=n_jobs,
                              threads=threads, twins=twins,
                              log=lambda line: print(f"{line}  [{time.perf_counter() - t_train:.0f} s]", flush=True))
        print("[4/4] report", flush=True)
        path = build_report(run_dirs, where / "report.md", base_file=base_eval)
        report = report or path
        print_summary(path)
    print(f"wall time: {time.perf_counter() - t0:.0f} s")
    return report


def print_summary(report: Path) -> None:
    """The report on the console: the per-arm table, the gate under test, the regime checks, the
    findings and the baselines' sections when the matrix ran them, and where the files are."""
    from vgrout.report.compare import findings
    from vgrout.report.gatequality import gate_console_table
    from vgrout.report.summary import console_table, format_checks, summary_path

    summary = json.loads(summary_path(report).read_text())
    print()
    print(console_table(summary))
    print("\nThe gate under test (does the routing score separate hacks? oracle labels, diagnostics only)")
    print(gate_console_table(summary))
    print("\nIs the regime one where the question can be read? (the regime checks)")
    print(format_checks(summary["regime_checks"]))
    print("\nFindings")
    print(findings(report))
    for heading in ("Oracle-selected early stopping (a reference, not a method)", "Relearning attack"):
        if f"## {heading}" in report.read_text():
            print(f"\n{heading}\n{report_section(report, heading)}")
    print(f"\nreport:  {report}\nsummary: {summary_path(report)}\nplots:   "
          f"{', '.join(str(p) for p in sorted(report.parent.glob('*.png')))}")


def parse_seeds(text: str) -> tuple[int, ...]:
    """"5" -> seeds 0..4; "0,3,7" (or "7,": the one seed 7) -> those seeds."""
    try:
        if "," in text:
            return tuple(int(s) for s in text.split(",") if s.strip())
        n = int(text)
    except ValueError:
        raise ValueError(f"--seeds {text!r}; give a count (5) or a comma-separated list (0,1,2)") from None
    if n < 1:
        raise ValueError(f"--seeds {n}; need at least one seed")
    return tuple(range(n))


def run_from_args(args: argparse.Namespace) -> int:
    """`vgrout study` and `vgrout demo`: the parsed flags -> `run_study`; errors exit with their message."""
    from vgrout.train.cli import parse_sets

    try:
        overrides = parse_sets(args.set or [])
        if args.steps is not None:
            overrides["steps"] = str(args.steps)
        if args.eval_every is not None:
            overrides["eval.every"] = str(args.eval_every)
        run_study(Path(args.out), args.preset, tuple(a for a in args.arms.split(",") if a), parse_seeds(args.seeds),
                  overrides, fork_at=args.fork_at, relearn_steps=args.relearn_steps, relearn_every=args.relearn_every,
                  relearn_n_problems=args.relearn_n_problems, heldout_modes=args.heldout_modes,
                  heldout_arms=tuple(a for a in (args.heldout_arms or "").split(",") if a),
                  heldout_seeds=parse_seeds(args.heldout_seeds) if args.heldout_seeds else (), fresh=args.fresh,
                  threads=args.threads, build_threads=args.build_threads, jobs=args.jobs, twins=args.twins == "write",
                  placebos=args.placebos, eval_last_only=args.eval_last_only)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise SystemExit(f"vgrout {args.command}: {exc}") from None
    return 0


def add_matrix_args(p: argparse.ArgumentParser, d: MatrixDefaults) -> None:
    """The flags of `vgrout study` and `vgrout demo`: the same names and meanings, `d`'s defaults."""
    p.add_argument("--out", default=d.out, help=f"where the runs, report.md and summary.json go (default {d.out})")
    p.add_argument("--preset", default="demo", help="the Config preset every run starts from (default demo)")
    p.add_argument("--arms", default=",".join(d.arms),
                   help=f"comma-separated, from: {', '.join(STUDY_ARMS)} (default: {','.join(d.arms)})")
    p.add_argument("--seeds", default=d.seeds,
                   help=f"a count (5: seeds 0..4) or a comma-separated list (0,1,2; 7, for seed 7 alone); default {d.seeds}")
    p.add_argument("--steps", type=int, default=None, help="GRPO steps per run (default: the preset's)")
    p.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="held-out eval every N steps and after the last (0: none; default: "
                        + ("after the last step only" if d.eval_last_only else "the preset's") + ")")
    p.set_defaults(eval_last_only=d.eval_last_only)
    p.add_argument("--fork-at", type=int, default=0, metavar="STEP",
                   help="train one vanilla prefix per seed to STEP and branch the arms that can from it "
                        "(0: every run from scratch; default 0)")
    p.add_argument("--placebos", type=int, default=d.placebos, metavar="K",
                   help=f"placebo directions per seed for each placebo arm (default {d.placebos}; 3: ARM-placebo, "
                        "ARM-placebo1, ARM-placebo2)")
    p.add_argument("--relearn-steps", type=int, default=d.relearn_steps,
                   help=f"relearning attack steps per run (0: skip; default {d.relearn_steps})")
    p.add_argument("--relearn-every", type=int, default=2, help="held-out eval every K attack steps")
    p.add_argument("--relearn-n-problems", type=int, default=16, help="held-out problems per attack eval")
    p.add_argument("--heldout-modes", action="store_true",
                   help=f"also run the held-out-mode sub-study on the {HELDOUT_MODES_PRESET!r} preset")
    p.add_argument("--heldout-arms", default=None, metavar="ARMS",
                   help="comma-separated arms of the held-out-mode sub-study (default: the same as --arms)")
    p.add_argument("--heldout-seeds", default=None, metavar="SEEDS",
                   help="the held-out-mode sub-study's seeds, a count or a list (default: the same as --seeds)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset Config field")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for training (default 1)")
    p.add_argument("--build-threads", type=int, default=2, help="torch CPU threads for the toy-world build (default 2)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="runs at a time, each in its own worker process (default: the usable CPUs, at most the "
                        "number of runs; 1: one after another in this process); results do not depend on it")
    p.add_argument("--twins", choices=("write", "train"), default="write",
                   help="write: a run that trains bit for bit as another arm's run in the matrix (vanilla, when "
                        "absorb has the same config) is written from it, not retrained (vgrout.twin; "
                        "tests/test_twin.py holds the equality); train: train every run (default write)")
    p.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming")
    p.set_defaults(func=run_from_args)


def register(subparsers) -> None:
    p = subparsers.add_parser("study", help="the study matrix: the study arms (--arms) x seeds, baselines, one report (resumable)",
                              description=__doc__.splitlines()[0])
    add_matrix_args(p, STUDY_DEFAULTS)


__all__ = ["DEFAULT_PLACEBOS", "FORK_FREE", "STUDY_ARMS", "STUDY_DEFAULT_ARMS", "STUDY_DEFAULTS", "MatrixDefaults", "Unit", "add_matrix_args",
           "arm_config", "check_fork_at", "check_same_run", "default_jobs", "dependency_order", "evaluate_base", "fork_mismatch",
           "is_study_arm", "parse_seeds", "placebo_draw", "plan_matrix", "print_summary", "register", "report_section",
           "run_from_args", "run_is_finished", "run_matrix", "run_study", "run_unit", "same_run", "saved_config",
           "train_one", "train_prefix", "unit_cost", "unit_done", "with_placebo_draws", "write_one"]
