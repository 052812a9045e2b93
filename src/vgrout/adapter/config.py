"""What to adapt: targets, rank per block, initialisation. Validated when built."""

from __future__ import annotations

from dataclasses import dataclass

from vgrout.types import ABSORB, KEEP, ROUTE, ZONE_NAMES  # noqa: F401  per-row zones (see `BlockAdapter.zones`)

# Inits built from W alone, and inits that also need calibration deltas from authored pairs.
WEIGHT_INITS: tuple[str, ...] = ("gaussian", "pissa")
PAIR_INITS: tuple[str, ...] = ("corda", "scorda", "scorda_rev", "antipasto")
INITS: tuple[str, ...] = WEIGHT_INITS + PAIR_INITS

DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class AdapterConfig:
    """The block-split adapter's shape and initialisation."""

    r: int = 8
    """Rank of each block. The deployed and the quarantine block each have rank r (2r in all)."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    """Last name component of every `nn.Linear` to wrap (`lm_head` is never wrapped)."""

    init: str = "gaussian"
    """One of INITS. gaussian/pissa read only W; corda/scorda/scorda_rev/antipasto also read
    calibration deltas from authored hack/clean pairs (`contrastive_input_deltas`)."""

    init_seed: int = 0
    """Seed of the gaussian init (per module: init_seed * 100003 + module index)."""

    def __post_init__(self) -> None:
        if isinstance(self.targets, str) or not isinstance(self.targets, (tuple, list)):
            raise TypeError(f"targets must be a tuple of module names, got {self.targets!r}")
        object.__setattr__(self, "targets", tuple(self.targets))
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"r must be an int >= 1 (rank of each block), got {self.r!r}")
        if self.init not in INITS:
            raise ValueError(f"unknown adapter init {self.init!r}; expected one of {', '.join(INITS)}")
        if not self.targets:
            raise ValueError("targets is empty; name at least one nn.Linear, e.g. ('q_proj', 'v_proj')")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets has duplicates: {self.targets}")
        for t in self.targets:
            if not isinstance(t, str) or not t or "." in t:
                raise ValueError(f"target {t!r} must be a module's last name component, like 'q_proj'")
            if t == "lm_head":
                raise ValueError("lm_head is never adapted; remove it from targets")
        if isinstance(self.init_seed, bool) or not isinstance(self.init_seed, int):
            raise ValueError(f"init_seed must be an int, got {self.init_seed!r}")

    @property
    def needs_calibration(self) -> bool:
        """True when the init reads hack-clean input deltas from authored pairs."""
        return self.init in PAIR_INITS

    def to_dict(self) -> dict:
        return {"r": self.r, "targets": list(self.targets), "init": self.init, "init_seed": self.init_seed}

    @classmethod
    def from_dict(cls, d: dict) -> AdapterConfig:
        return cls(r=int(d["r"]), targets=tuple(d["targets"]), init=str(d["init"]), init_seed=int(d["init_seed"]))
