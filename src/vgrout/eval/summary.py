"""`summarize_run(run_dir)`: the few lines a run ends with (final as-trained and deployed hack,
solve and valid-output rates, where the files are, the next commands). Torch-free: it reads
the run's config.json and eval files only, so `vgrout train` can print it after the last step.
"""

from __future__ import annotations

import re
from pathlib import Path

from vgrout.eval.results import read_eval, samples_path
from vgrout.eval.settings import nest_eval_keys
from vgrout.rundir import (arm_label, checkpoints_dir, config_path, curve_path, diagnostics_path, eval_dir,
                           list_checkpoints, metrics_path, read_config)

# a deployed valid-output rate this far below as-trained's makes a hack drop suspect (broken output)
VALID_DROP_WARN = 0.1
_STEP_FILE = re.compile(r"^step_(\d{6,})\.json$")


def _rates(overall: dict) -> tuple[str, float]:
    n = overall["n"]
    valid = overall["format_ok"] / n
    text = (f"hack {overall['hack_rate']:.3f} ({overall['hacked']}/{n})  solve {overall['solve_rate']:.3f} "
            f"({overall['solved']}/{n})  valid {valid:.3f} ({overall['format_ok']}/{n})")
    return text, valid


def summarize_run(run_dir: str | Path) -> str:
    """Final eval rates (as-trained and deployed, with the valid-output rate beside them), the
    run's files, and the commands that come next."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    lines = [f"run {run_dir} ({arm_label(cfg)}, seed {cfg.get('seed')}, {cfg.get('steps')} steps)"]
    curve_file = curve_path(run_dir)
    steps = {int(m.group(1)): f for f in eval_dir(run_dir).glob("step_*.json") if (m := _STEP_FILE.match(f.name))}
    final = (steps[max(steps)], read_eval(steps[max(steps)])) if steps else None
    if final is None:
        every = nest_eval_keys(cfg).get("eval", {}).get("every", 0)  # nested eval settings; older flat keys too
        lines.append(f"no held-out eval yet (eval.every={every}); evaluate the checkpoints with "
                     f"`vgrout eval {run_dir}`")
    else:
        path, res = final
        st, s = res["states"], res.get("settings", {})
        lines.append(f"final held-out eval, step {res['step']}: {res['n_problems']} problems x {s.get('n_samples')} "
                     f"samples, markers {s.get('markers')}, T {s.get('temperature')} top-p {s.get('top_p')} "
                     f"top-k {s.get('top_k')}")
        at, v_at = _rates(st["as_trained"]["overall"])
        dep, v_dep = _rates(st["deployed"]["overall"])
        lines += [f"  as-trained: {at}", f"  deployed:   {dep}"]
        if v_dep < v_at - VALID_DROP_WARN:
            lines.append(f"  note: deployed valid-output rate {v_dep:.3f} < as-trained {v_at:.3f}: part of any hack "
                         "drop is broken output, not removed hacking")
    lines.append("files:")
    lines.append(f"  {config_path(run_dir)}  {metrics_path(run_dir)}  {diagnostics_path(run_dir)}")
    ckpts = list_checkpoints(run_dir) if checkpoints_dir(run_dir).is_dir() else []
    if ckpts:
        lines.append(f"  {checkpoints_dir(run_dir)}/  (steps {', '.join(str(s) for s, _ in ckpts)})")
    if final is not None:
        sp = samples_path(final[0])
        lines.append(f"  {final[0]}" + (f"  {sp}" if sp.is_file() else "") + f"  {curve_file}")
    lines.append("next:")
    if final is not None:
        lines.append(f"  vgrout samples {run_dir} --hack        # read the hacks (--broken, --solved)")
    lines.append(f"  vgrout eval {run_dir} --checkpoints all   # eval every checkpoint with the run's own settings")
    if ckpts:
        lines.append(f"  vgrout export {run_dir} --out {run_dir / 'export'}   # what the arm deploys, as a PEFT LoRA")
    lines.append(f"  vgrout compare {run_dir.parent}/*_s* --out {run_dir.parent / 'report.md'}   # arms x seeds")
    return "\n".join(lines)


__all__ = ["summarize_run"]
