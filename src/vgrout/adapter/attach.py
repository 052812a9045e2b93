"""Wrap a Hugging Face causal LM with block-split adapters and steer them.

    adapter = attach(model, AdapterConfig(r=8), calibration=None)
    with adapter.zones(z):                  # z: (N,) KEEP/ABSORB/ROUTE per batch row
        loss = pg_loss(model(ids))           # keep: deployed learns; absorb: both; route: quarantine
    with adapter.mode("deployed"): ...       # quarantine ablated (evaluation of the deployed model)
    with adapter.mode("base"): ...           # adapter off: the KL reference
    with adapter.merged("full"): model.generate(...)   # blocks folded into W; restored bit for bit

Every context restores what it changed in `finally`, so an exception cannot leave the model
in a masked, ablated or merged state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from vgrout.adapter.config import ABSORB, KEEP, ROUTE, AdapterConfig
from vgrout.adapter.init import build_blocks, empty_blocks
from vgrout.adapter.layer import BLOCKS, MODES, AdapterControl, BlockLinear, zone_masks
from vgrout.adapter.probes import BottleneckCapture, GradProbe
from vgrout.io import atomic_file

FORMAT = "vgrout.adapter/1"
# Generation states `merged(which)` folds in: (deployed block scale, quarantine block scale).
# full and deployed are the as-trained and the deployed model; the two others bound what the
# quarantine holds (the deploy-scale evaluation: quarantine scale 0, 0.5, 1, and it alone).
MERGE_SCALES: dict[str, tuple[float, float]] = {
    "full": (1.0, 1.0), "deployed": (1.0, 0.0), "half_quarantine": (1.0, 0.5), "quarantine_only": (0.0, 1.0)}


def find_targets(model: nn.Module, targets: tuple[str, ...]) -> dict[str, nn.Linear]:
    """Full name -> nn.Linear for every module whose last name component is in `targets`."""
    hits: dict[str, nn.Linear] = {}
    linear_leaves: set[str] = set()
    for name, mod in model.named_modules():
        if isinstance(mod, BlockLinear):
            raise ValueError(f"model already has a block adapter ({name}); call adapter.unload() before attaching again")
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(mod, nn.Linear):
            linear_leaves.add(leaf)
        if leaf in targets and leaf != "lm_head":
            if not isinstance(mod, nn.Linear):
                raise ValueError(f"target module {name} is a {type(mod).__name__}, not nn.Linear; drop {leaf!r} from targets")
            hits[name] = mod
    kind = type(model).__name__
    if not hits:
        raise ValueError(f"{kind} has none of the target modules {list(targets)}; "
                         f"its nn.Linear names are {sorted(linear_leaves)}")
    found = {n.rsplit(".", 1)[-1] for n in hits}
    missing = [t for t in targets if t not in found]
    if missing:
        raise ValueError(f"target(s) {missing} matched no nn.Linear in {kind}; "
                         f"its nn.Linear names are {sorted(linear_leaves)}")
    return dict(sorted(hits.items()))


def _check_calibration(cfg: AdapterConfig, calibration: Mapping[str, Tensor] | None, names: list[str]) -> None:
    if cfg.needs_calibration and calibration is None:
        raise ValueError(f"init {cfg.init!r} needs calibration deltas from authored pairs; "
                         "pass calibration=contrastive_input_deltas(model, tokenizer, pairs, cfg.targets)")
    if not cfg.needs_calibration and calibration is not None:
        raise ValueError(f"init {cfg.init!r} does not read calibration deltas; pass calibration=None")
    if calibration is not None:
        extra = sorted(set(calibration) - set(names))
        missing = [n for n in names if n not in calibration]
        if extra or missing:
            raise ValueError(f"calibration keys do not match the wrapped modules: missing {missing[:3]}"
                             f"{'...' if len(missing) > 3 else ''}, unexpected {extra[:3]}")


def _wrap(model: nn.Module, cfg: AdapterConfig, calibration: Mapping[str, Tensor] | None,
          empty: bool) -> BlockAdapter:
    linears = find_targets(model, cfg.targets)
    names = list(linears)
    if not empty:
        _check_calibration(cfg, calibration, names)
    for name, lin in linears.items():
        d_out, d_in = lin.weight.shape
        if 2 * cfg.r > min(d_in, d_out):
            raise ValueError(f"r={cfg.r} is too large for {name} ({d_out}x{d_in}): the two blocks need "
                             f"2r <= min(d_in, d_out) = {min(d_in, d_out)}; use r <= {min(d_in, d_out) // 2}")
    for p in model.parameters():
        p.requires_grad_(False)
    control = AdapterControl()
    layers: dict[str, BlockLinear] = {}
    for i, (name, lin) in enumerate(linears.items()):
        W = lin.weight
        if empty:
            deployed, quarantine = empty_blocks(cfg.init, W.shape[0], W.shape[1], cfg.r, W.device)
        else:
            deltas = None if calibration is None else calibration[name]
            deployed, quarantine = build_blocks(cfg.init, W, cfg.r, seed=cfg.init_seed * 100003 + i,
                                                deltas=deltas, name=name)
        layers[name] = BlockLinear(lin, name, deployed, quarantine, control)
    for name, layer in layers.items():
        _set_submodule(model, name, layer)
    return BlockAdapter(model, cfg, layers, control)


def attach(model: nn.Module, cfg: AdapterConfig, calibration: Mapping[str, Tensor] | None = None) -> BlockAdapter:
    """Wrap every target nn.Linear of `model` in place (never lm_head) and freeze the base.

    calibration: {module name: (P, d_in) hack-clean input deltas}, required by the pair-based
    inits (corda, scorda, scorda_rev, antipasto) and refused by the others.
    Attach after moving the model to its device: adapter tensors are made on each W's device.
    """
    if not isinstance(cfg, AdapterConfig):
        raise TypeError(f"cfg must be an AdapterConfig, got {type(cfg).__name__}")
    return _wrap(model, cfg, calibration, empty=False)


def load_adapter(model: nn.Module, path: str | os.PathLike) -> BlockAdapter:
    """Attach an adapter to `model` from a `BlockAdapter.save` file (config read from the file)."""
    meta, _ = _read_checkpoint(path)
    adapter = _wrap(model, AdapterConfig.from_dict(json.loads(meta["config"])), None, empty=True)
    try:
        adapter.load(path)
    except Exception:
        adapter.unload()
        raise
    return adapter


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, leaf, module)


def _read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, Tensor]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"adapter checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"adapter checkpoint {path} is corrupt or not a safetensors file: {exc}") from exc
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(f"{path} is not a vgrout adapter checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta, tensors


class BlockAdapter:
    """Handle on the wrapped modules of one model: masks, modes, merge, probes, state, export."""

    def __init__(self, model: nn.Module, cfg: AdapterConfig, layers: dict[str, BlockLinear],
                 control: AdapterControl) -> None:
        self.model = model
        self.config = cfg
        self.layers = layers
        self._control = control
        self._attached = True

    @property
    def module_names(self) -> list[str]:
        """Wrapped module names, sorted: the M axis of every (N, M, r) feature."""
        return list(self.layers)

    @property
    def r(self) -> int:
        return self.config.r

    def _check_live(self) -> None:
        if not self._attached:
            raise RuntimeError("this adapter was unloaded from its model")

    # ---- contexts -------------------------------------------------------------------------
    @contextmanager
    def zones(self, z: Tensor) -> Iterator[None]:
        """Per-row zones for the forwards inside: z (N,) of KEEP / ABSORB / ROUTE."""
        self._check_live()
        ctl = self._control
        if not isinstance(z, Tensor) or z.ndim != 1 or z.numel() == 0 or z.is_floating_point() or z.dtype == torch.bool:
            raise ValueError("zones must be a non-empty (N,) integer tensor of KEEP=0 / ABSORB=1 / ROUTE=2")
        bad = z[(z != KEEP) & (z != ABSORB) & (z != ROUTE)]
        if bad.numel():
            raise ValueError(f"zones has values {sorted(set(bad.tolist()))}; allowed: KEEP=0, ABSORB=1, ROUTE=2")
        if ctl.keep_rows is not None:
            raise RuntimeError("zones contexts do not nest")
        if ctl.merged or ctl.mode != "full":
            raise RuntimeError(f"zones need the full unmerged adapter (mode is {ctl.mode!r}, merged={ctl.merged})")
        ctl.keep_rows, ctl.route_rows = zone_masks(z)
        try:
            yield
        finally:
            ctl.keep_rows = ctl.route_rows = None

    @contextmanager
    def mode(self, which: str) -> Iterator[None]:
        """full (D + Q), deployed (quarantine ablated: net Q = 0) or base (adapter off)."""
        self._check_live()
        ctl = self._control
        if which not in MODES:
            raise ValueError(f"unknown adapter mode {which!r}; expected one of {MODES}")
        if ctl.merged or ctl.keep_rows is not None:
            raise RuntimeError("cannot switch adapter mode inside merged() or zones()")
        prev, ctl.mode = ctl.mode, which
        try:
            yield
        finally:
            ctl.mode = prev

    @contextmanager
    def merged(self, which: str = "full") -> Iterator[None]:
        """Fold the active blocks into the base weights for fast generation; restore W exactly after.

        `which` names the blocks and their scales (`MERGE_SCALES`): full (D + Q), deployed (D),
        half_quarantine (D + Q/2), quarantine_only (Q).

        Forwards inside cost exactly the base model's. W is backed up (a copy of every wrapped
        weight) and copied back in `finally`, so the restore is bit for bit.
        """
        self._check_live()
        ctl = self._control
        if which not in MERGE_SCALES:
            raise ValueError(f"merged() takes one of {', '.join(MERGE_SCALES)}, got {which!r}")
        dep_scale, quar_scale = MERGE_SCALES[which]
        if ctl.merged or ctl.keep_rows is not None or ctl.mode != "full":
            raise RuntimeError(f"merged() needs the plain full adapter (mode {ctl.mode!r}, merged={ctl.merged}, "
                               f"zones set={ctl.keep_rows is not None})")
        backups: dict[str, Tensor] = {}
        try:
            with torch.no_grad():
                for name, layer in self.layers.items():
                    W = layer.base.weight
                    delta = layer.deployed.weight_delta()
                    if dep_scale != 1.0:
                        delta = delta * dep_scale
                    if quar_scale == 1.0:
                        delta = delta + layer.quarantine.weight_delta()
                    elif quar_scale != 0.0:
                        delta = delta + quar_scale * layer.quarantine.weight_delta()
                    backups[name] = W.detach().clone()
                    W.copy_((W.float() + delta.to(W.device)).to(W.dtype))
            ctl.merged = True
            yield
        finally:
            ctl.merged = False
            with torch.no_grad():
                for name, W0 in backups.items():
                    self.layers[name].base.weight.copy_(W0)

    @contextmanager
    def capture_bottleneck(self, completion_mask: Tensor) -> Iterator[BottleneckCapture]:
        """After one forward inside, `cap.pooled` is (N, M, r): A_d x mean-pooled over the mask."""
        self._check_live()
        if self._control.capture is not None:
            raise RuntimeError("capture_bottleneck contexts do not nest")
        cap = BottleneckCapture(completion_mask, self.module_names)
        self._control.capture = cap
        try:
            yield cap
        finally:
            self._control.capture = None

    @contextmanager
    def grad_probe(self) -> Iterator[GradProbe]:
        """Probe c (N, 1, 2r) of ones on each bottleneck; `probe.per_row(loss)` -> (N, M, r)."""
        self._check_live()
        if self.config.init == "antipasto":
            raise ValueError("the antipasto adapter has no gradient probe (its read is frozen); "
                             "use a low-rank init (gaussian, pissa, corda, scorda) with routeV")
        if self._control.probe is not None:
            raise RuntimeError("grad_probe contexts do not nest")
        probe = GradProbe(self.module_names)
        self._control.probe = probe
        try:
            yield probe
        finally:
            self._control.probe = None

    @contextmanager
    def unfused(self) -> Iterator[None]:
        """Forwards inside run each low-rank block on its own (the reference for the fused path)."""
        self._check_live()
        prev, self._control.fused = self._control.fused, False
        try:
            yield
        finally:
            self._control.fused = prev

    @contextmanager
    def unwrapped(self) -> Iterator[nn.Module]:
        """The model with its original nn.Linear modules back in place (for save_pretrained)."""
        self._check_live()
        for name, layer in self.layers.items():
            _set_submodule(self.model, name, layer.base)
        try:
            yield self.model
        finally:
            for name, layer in self.layers.items():
                _set_submodule(self.model, name, layer)

    # ---- parameters -----------------------------------------------------------------------
    def parameters(self, block: str = "all") -> list[nn.Parameter]:
        """Trainable parameters of the deployed block, the quarantine block, or both."""
        if block not in (*BLOCKS, "all"):
            raise ValueError(f"unknown block {block!r}; expected 'deployed', 'quarantine' or 'all'")
        blocks = BLOCKS if block == "all" else (block,)
        return [p for layer in self.layers.values() for b in blocks for p in layer.block(b).trainable()]

    def block_grad_norms(self) -> tuple[float, float]:
        """L2 norms of the current .grad of (deployed, quarantine); a missing grad counts 0."""
        def norm(ps: list[nn.Parameter]) -> float:
            sq = [p.grad.detach().float().pow(2).sum() for p in ps if p.grad is not None]
            return float(torch.stack([s.cpu() for s in sq]).sum().sqrt()) if sq else 0.0
        return norm(self.parameters("deployed")), norm(self.parameters("quarantine"))

    def decay_toward_init(self, factor: float) -> None:
        """p <- p - factor (p - p0) on every trainable: pulls the net delta toward zero.

        factor is lr * weight_decay. (Plain AdamW decay would pull the net delta toward -B0 A0.)
        """
        if not (0.0 <= float(factor) <= 1.0):
            raise ValueError(f"decay factor must be in [0, 1], got {factor}")
        for layer in self.layers.values():
            layer.deployed.decay_toward_init(float(factor))
            layer.quarantine.decay_toward_init(float(factor))

    def ablate_quarantine(self) -> None:
        """Deployment: reset the quarantine to its init, permanently (net Q = 0 exactly)."""
        self._check_live()
        for layer in self.layers.values():
            layer.quarantine.reset()

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """'{module}.{block}.{tensor}' -> tensor, trainables and their frozen init (fp32)."""
        return {f"{name}.{b}.{k}": v for name, layer in self.layers.items()
                for b in BLOCKS for k, v in layer.block(b).state_dict().items()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Copy a `state_dict()` in place; every key and shape must match exactly."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        if missing or extra:
            raise ValueError(f"adapter state does not match this adapter: {len(missing)} missing key(s) "
                             f"(e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})")
        bad = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
        if bad:
            raise ValueError(f"adapter state has mismatched shapes (saved vs here): {bad[:3]}")
        with torch.no_grad():
            for k, v in own.items():
                v.copy_(state[k].to(device=v.device, dtype=v.dtype))

    def save(self, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
        """Write the full adapter state (fp32 safetensors) with its config; crash-safe."""
        from safetensors.torch import save_file

        path = Path(path)
        meta = {"format": FORMAT, "config": json.dumps(self.config.to_dict()), "modules": json.dumps(self.module_names)}
        for k, v in (metadata or {}).items():
            if k in meta or not isinstance(v, str):
                raise ValueError(f"metadata key {k!r} is reserved or its value is not a str")
            meta[k] = v
        tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.state_dict().items()}
        with atomic_file(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    def load(self, path: str | os.PathLike) -> None:
        """Load a `save` file into this adapter; its config must match this one."""
        meta, tensors = _read_checkpoint(path)
        saved = AdapterConfig.from_dict(json.loads(meta["config"]))
        diff = {k: (v, getattr(self.config, k)) for k, v in saved.to_dict().items()
                if k != "init_seed" and v != self.config.to_dict()[k]}
        if diff:
            raise ValueError(f"{path} was saved with a different adapter config (saved, here): {diff}")
        self.load_state_dict(tensors)

    def unload(self) -> nn.Module:
        """Put the original nn.Linear modules back; the model is the base model again."""
        self._check_live()
        for name, layer in self.layers.items():
            _set_submodule(self.model, name, layer.base)
        self._attached = False
        return self.model
