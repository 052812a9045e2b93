"""Twin runs: a run whose training is, bit for bit, another arm's run is written from it, not retrained.

    absorb run dir (trained) -> vanilla run dir (relabelled; its eval's deployed state = as-trained)

Why it is exact: vanilla and absorb train the same two-block adapter with the same config. The
absorb gate pins every row to the absorb zone, which masks nothing: each forward value, gradient,
AdamW step, rollout and reward is vanilla's (tests/test_twin.py trains both and compares every
file). The arms differ only in what deploys: vanilla the whole adapter, absorb the deployed block.
Vanilla's eval therefore samples its deployed state with the whole adapter, the same seeds as the
as-trained state, so it holds the as-trained block twice, as `evaluate(deployed_is_full=True)`
writes it. `vgrout study` and `vgrout demo` train absorb once and write vanilla from it
(`--twins train` trains both). The written run says so in its twin.json.

Only the oracle-free training record is copied; vanilla's own relearning attacks (they start from
its deployed model, which is not absorb's) run on the written directory as on a trained one.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from vgrout.eval.results import SCALE_STATES
from vgrout.io import atomic_dir, write_json_atomic, write_text_atomic
from vgrout.rundir import (
    STATE,
    STEP_PREFIX,
    TRAINER_FILES,
    TWIN,
    checkpoints_dir,
    config_path,
    eval_dir,
    is_complete,
    rollout_samples_path,
    step_dir,
    write_config,
)
from vgrout.train.config import Config

# derived arm -> the arm whose run it is written from
TWINS: dict[str, str] = {"vanilla": "absorb"}
TWIN_FILE = TWIN
# what is copied from the source run dir: the trainer's record (`vgrout.rundir.TRAINER_FILES`;
# config.json is written anew). Not copied: its relearning attacks (they start from its deployed
# model), an export, anything else a user put there. tests/test_twin.py fails when the trainer
# writes a file this list misses.
COPIED = TRAINER_FILES


def twin_mismatch(source: Config, derived: Config) -> list[str]:
    """Why `derived` cannot be written from a run of `source` (empty: it can).

    Every Config field but `arm` must be equal, the arms a TWINS pair, and the adapter low-rank
    (the exactness test covers the fused low-rank blocks; antipasto runs the per-block path)."""
    why = []
    if TWINS.get(derived.arm) != source.arm:
        why.append(f"arm {derived.arm!r} is not written from arm {source.arm!r} (twins: {TWINS})")
    a, b = source.resolved().to_dict(), derived.resolved().to_dict()
    why += [f"{k} {b[k]!r} vs the source's {a[k]!r}" for k in sorted(a) if k != "arm" and a[k] != b[k]]
    if source.adapter_init == "antipasto":
        why.append("adapter_init 'antipasto' (the exactness of twins is tested for low-rank blocks only)")
    return why


def _eval_with_texts(step_json: Path) -> dict:
    """An eval result as `evaluate` returned it: the step JSON with each sample's text put back
    from step_NNNNNN.samples.jsonl (row order: states, then samples, as `sample_rows` wrote it)."""
    from vgrout.eval.results import ALL_STATES, read_jsonl, samples_path

    result = json.loads(step_json.read_text())
    rows = read_jsonl(samples_path(step_json))
    i = 0
    for state in ALL_STATES:
        for s in result["states"].get(state, {}).get("samples", []):
            row = rows[i] if i < len(rows) else None
            if row is None or (row["state"], row["problem_id"], row["sample"]) != (state, s["problem_id"], s["sample"]):
                raise ValueError(f"{samples_path(step_json)} does not match {step_json} at row {i}; "
                                 "re-run the source's eval (vgrout eval RUN --overwrite)")
            s["text"] = row["completion"]
            i += 1
    if i != len(rows):
        raise ValueError(f"{samples_path(step_json)} has {len(rows)} rows for {i} samples in {step_json}; "
                         "re-run the source's eval (vgrout eval RUN --overwrite)")
    return result


def _whole_adapter_eval(result: dict, source_dir: Path, run_dir: Path, arm: str) -> dict:
    """The source's eval as the derived arm's own eval writes it: deployed = the as-trained block."""
    out = copy.deepcopy(result)
    out["run_dir"] = str(run_dir)
    out["run"] = dict(out["run"], arm=arm)
    out["settings"] = dict(out["settings"], deployed_is_full=True)
    if out.get("checkpoint"):  # written by `vgrout eval RUN`: the checkpoint is the twin's own copy
        out["checkpoint"] = str(run_dir / Path(out["checkpoint"]).relative_to(source_dir))
    out["states"]["deployed"] = copy.deepcopy(out["states"]["as_trained"])
    for state in SCALE_STATES:  # a whole-adapter arm has no quarantine to scale
        out["states"].pop(state, None)
    return out


def source_finished(run_dir: Path, cfg: Config) -> bool:
    """A finished run: its final checkpoint and, when it evaluates, its final-step eval."""
    from vgrout.eval.results import eval_path

    return is_complete(step_dir(Path(run_dir), cfg.steps)) and (
        not cfg.eval.every or eval_path(run_dir, cfg.steps).is_file())


def write_twin(source_dir: Path, run_dir: Path, cfg: Config) -> Path:
    """Write RUN_DIR for `cfg` from the finished run SOURCE_DIR (see the module doc); atomic: the
    directory appears whole or not at all (an existing one is replaced). Raises when the two
    configs are not twins or the source is not finished."""
    from vgrout.eval.results import rebuild_curve, write_eval_result
    from vgrout.train.arms import arm_for

    source_dir, run_dir = Path(source_dir), Path(run_dir)
    source = Config.from_dict(json.loads(config_path(source_dir).read_text()))
    why = twin_mismatch(source, cfg)
    if why:
        raise ValueError(f"{run_dir.name} cannot be written from {source_dir}: " + "; ".join(why))
    if not source_finished(source_dir, source):
        raise ValueError(f"{source_dir} is not finished (no final checkpoint, or no eval, at step {source.steps}); "
                         "train it first")
    with atomic_dir(run_dir) as tmp:
        for name in COPIED:
            item = source_dir / name
            if item.exists():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / name)
        write_config(tmp, cfg.resolved().to_json())  # start.json: copied, the same start
        arm_info = {"arm": cfg.arm, "deploys": arm_for(cfg.arm).deploys}  # what state.json says a trained run deploys
        for state in sorted(checkpoints_dir(tmp).glob(f"{STEP_PREFIX}*/{STATE}")):
            write_json_atomic(state, dict(json.loads(state.read_text()), **arm_info))
        samples = rollout_samples_path(tmp)
        if samples.is_file():  # zones: vanilla has none
            rows = [dict(json.loads(line), zone=None) for line in samples.read_text().splitlines() if line]
            write_text_atomic(samples, "".join(json.dumps(r) + "\n" for r in rows))
        for step_json in sorted(eval_dir(source_dir).glob("step_*.json")):
            write_eval_result(eval_dir(tmp) / step_json.name,
                              _whole_adapter_eval(_eval_with_texts(step_json), source_dir, run_dir, cfg.arm))
        if eval_dir(tmp).is_dir():
            rebuild_curve(tmp)
        write_json_atomic(tmp / TWIN_FILE, {
            "written_from": str(source_dir.resolve()), "source_arm": source.arm,
            "why": f"{cfg.arm} trains bit for bit as {source.arm} (same config, all-{source.arm} zones mask "
                   f"nothing); only what deploys differs, so this run is {source.arm}'s run relabelled and its "
                   "eval's deployed state is the as-trained (whole-adapter) state (vgrout.twin)"}, indent=2)
    return run_dir


def read_twin(run_dir: Path) -> dict | None:
    """twin.json of a run written from its twin (None: a trained run)."""
    path = Path(run_dir) / TWIN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["COPIED", "TWINS", "TWIN_FILE", "read_twin", "source_finished", "twin_mismatch", "write_twin"]
