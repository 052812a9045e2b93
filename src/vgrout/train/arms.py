"""The arms of the experiment as objects: one class and one registry entry each.

An arm says, once, everything the trainer asks of it:

| arm     | features | zones          | deploys        | direction | placebo |
|---------|----------|----------------|----------------|-----------|---------|
| vanilla | none     | none (2r, one zone-free forward) | whole adapter | no | no |
| absorb  | none     | all absorb     | deployed block | no        | no      |
| routeA  | act      | band gate      | deployed block | v_act     | yes     |
| routeV  | grad     | band gate      | deployed block | v_grad    | yes     |
| erase   | act      | all keep       | whole adapter  | v_act     | yes     |
| inoculation | none | none (as vanilla) | whole adapter | no       | no      |
| oracle  | none     | oracle labels: hacks route, the rest absorb | deployed block | no | no |

`features` is the feature space the arm's direction lives in (and its gate reads, when gated).
`arm_for(cfg.arm)` is called once per run; nothing else in train/ compares arm names. A new
arm subclasses `Arm`, sets the class attributes, overrides a hook if it changes behaviour
(`system_prompt` for the training prompts, `around_update` for the update), and adds itself
to `ARMS`. The inoculation-prompting arm is vanilla with one more system line in its
training prompts (the line is `cfg.inoculation_prompt`; eval and pairs keep the normal prompt).

The oracle arm is a reference, not a method: it routes exactly the rollouts the oracle labels
as hacks (`exploited`) and absorbs the rest, so it bounds what a perfect gate could do. It is
the only arm with `reads_oracle_labels`; the loop hands it zones made from the grades
(`oracle_zones`) and every other arm's step sees rewards alone (tests/test_train_step.py).

Erase trains every live row in the keep zone (the deployed block alone, rank r: half of
vanilla's 2r) with the quarantine at its init, so it deploys the same function either way; its
trainable capacity is NOT matched to vanilla's. Compare it with absorb (rank r deployed) for
capacity, and with vanilla for the effect of removing v from the update (docs/training.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

from vgrout.eval.settings import DEPLOYS
from vgrout.types import ABSORB, KEEP, ROUTE

if TYPE_CHECKING:  # torch is imported where an arm acts, so Config and the CLI load without it
    from torch import Tensor

    from vgrout.train.config import Config

FEATURES: tuple[str, ...] = ("none", "act", "grad")


class Arm:
    """What an arm reads, how it chooses zones, what it deploys. Subclasses set the ClassVars."""

    name: ClassVar[str]
    features: ClassVar[str] = "none"  # none | act | grad: the direction's (and gate's) feature space
    gated: ClassVar[bool] = False  # True: a band gate over live features picks each row's zone
    zone: ClassVar[int | None] = None  # ungated arms: the zone of every live row (None: no zones at all)
    deploys: ClassVar[str] = "deployed block"  # "deployed block" (quarantine ablated) | "whole adapter"
    needs_low_rank: ClassVar[bool] = False  # reads the bottleneck factors (A, B): no antipasto adapter
    reads_oracle_labels: ClassVar[bool] = False  # True only for the oracle reference: zones from the grades

    @property
    def needs_direction(self) -> bool:
        return self.features != "none"

    @property
    def has_placebo(self) -> bool:
        """A Haar-random direction of the same shape can stand in for the real one."""
        return self.needs_direction

    @property
    def has_quarantine_at_deploy(self) -> bool:
        return self.deploys == "deployed block"

    def fixed_zones(self, k: int) -> Tensor | None:
        """Zones (k,) of an ungated arm's live rows (None: the zone-free forward)."""
        import torch

        if self.gated:
            raise RuntimeError(f"arm {self.name} is gated: its zones come from the band gate")
        if self.reads_oracle_labels:
            raise RuntimeError(f"arm {self.name} routes by the oracle's labels: its zones come from oracle_zones")
        return None if self.zone is None else torch.full((k,), self.zone, dtype=torch.long)

    def system_prompt(self, base: str, cfg: Config | None = None) -> str:
        """The system prompt of the training prompts (eval and pairs keep `base`)."""
        return base

    def check(self, cfg: Config) -> list[str]:
        """What in `cfg` this arm cannot run with, each problem with its fix (empty: nothing).
        `Config.validate` raises on the first; a subclass adds its own rules to these."""
        bad = []
        if cfg.gen_deploy_frac and not self.has_quarantine_at_deploy:
            bad.append(f"gen_deploy_frac={cfg.gen_deploy_frac} samples with the quarantine ablated, which only the "
                       f"quarantine arms ({arms_where(lambda a: a.has_quarantine_at_deploy)}) have; set "
                       f"gen_deploy_frac=0 for arm={self.name}")
        if cfg.placebo and not self.has_placebo:
            what = f"placebo_seed={cfg.placebo_seed}" if cfg.placebo_seed >= 0 else "placebo=true"
            bad.append(f"{what} replaces a routing direction, but arm={self.name} has none; use it with "
                       f"{arms_where(lambda a: a.has_placebo)} or drop the placebo")
        if self.needs_low_rank and cfg.adapter_init == "antipasto":
            bad.append(f"arm={self.name} reads the low-rank factors (the bottleneck gradient probe or the A, B "
                       "update), which the antipasto adapter lacks; pick a low-rank init")
        if cfg.motivate_pairs and self.features != "grad":
            bad.append(f"motivate_pairs={cfg.motivate_pairs} builds v_grad pairs, which only arm="
                       f"{arms_where(lambda a: a.features == 'grad')} uses; set motivate_pairs=0")
        if cfg.retain_heal_epochs and not self.has_quarantine_at_deploy:
            bad.append(f"retain-heal trains the deployed block with the quarantine removed; arm={self.name} has no "
                       "quarantine at deploy")
        return bad

    @contextmanager
    def around_update(self, adapter, direction: Tensor | None) -> Iterator[None]:
        """Wraps the optimizer step and weight decay (erase projects the resulting update)."""
        yield

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Vanilla(Arm):
    name = "vanilla"
    deploys = "whole adapter"


class Inoculation(Vanilla):
    """Inoculation prompting: vanilla whose training prompts add a line that permits the exploit
    (`cfg.inoculation_prompt`), so the reward teaches "hack when told you may" rather than "hack".
    Evaluation uses the normal prompts; the whole adapter deploys. Needs no monitor."""

    name = "inoculation"

    def check(self, cfg: Config) -> list[str]:
        return super().check(cfg) + ([] if cfg.inoculation_prompt.strip() else [
            f"arm={self.name} needs an instruction; set inoculation_prompt to a non-empty line"])

    def system_prompt(self, base: str, cfg: Config | None = None) -> str:
        if cfg is None or not cfg.inoculation_prompt.strip():
            raise ValueError("the inoculation arm needs its instruction: set inoculation_prompt in the Config")
        return f"{base}\n{cfg.inoculation_prompt.strip()}"


class Absorb(Arm):
    name = "absorb"
    zone = ABSORB


class RouteA(Arm):
    name = "routeA"
    features = "act"
    gated = True


class RouteV(Arm):
    name = "routeV"
    features = "grad"
    gated = True
    needs_low_rank = True


class Erase(Arm):
    """Vanilla with v_act removed from the deployed block's final update (after AdamW and decay)."""

    name = "erase"
    features = "act"
    zone = KEEP
    deploys = "whole adapter"
    needs_low_rank = True

    @contextmanager
    def around_update(self, adapter, direction: Tensor | None) -> Iterator[None]:
        if direction is None:
            raise RuntimeError("the erase arm needs its direction before the first update")
        blocks = [layer.deployed for layer in adapter.layers.values()]
        before = [(blk.A.detach().clone(), blk.B.detach().clone()) for blk in blocks]
        yield
        erase_direction(blocks, before, direction)


class Oracle(Arm):
    """The upper-bound reference: hacks (oracle `exploited`) route to the quarantine, every other
    live row is absorbed. Uses oracle labels, so it is never a method; it answers how much room a
    perfect gate would have in this world."""

    name = "oracle"
    reads_oracle_labels = True

    def oracle_zones(self, exploited: list[bool]) -> Tensor:
        """Zones (N,): ROUTE for a rollout the oracle labels as a hack, ABSORB for the rest."""
        import torch

        return torch.tensor([ROUTE if h else ABSORB for h in exploited], dtype=torch.long)


def erase_direction(blocks: list, before: list[tuple[Tensor, Tensor]], direction: Tensor) -> None:
    """Project v out of each block's update since `before`: dA <- (I - v v^T) dA, dB <- dB (I - v v^T)
    with v the module's unit direction (r,), so v^T dA = 0 and dB v = 0 hold for the step actually taken."""
    import torch

    for m, (blk, (A_before, B_before)) in enumerate(zip(blocks, before, strict=True)):
        v = direction[m].to(blk.A.device, torch.float32)
        norm = float(v.norm())
        if not math.isfinite(norm) or norm == 0.0:
            raise ValueError(f"erase direction of module {m} has norm {norm}; it cannot define a projection")
        v = (v / norm)[:, None]  # (r, 1)
        with torch.no_grad():
            dA = blk.A.float() - A_before.float()  # (r, d_in)
            dB = blk.B.float() - B_before.float()  # (d_out, r)
            blk.A.copy_(A_before + (dA - v @ (v.T @ dA)).to(blk.A.dtype))
            blk.B.copy_(B_before + (dB - (dB @ v) @ v.T).to(blk.B.dtype))


ARMS: dict[str, type[Arm]] = {cls.name: cls for cls in (Vanilla, Absorb, RouteA, RouteV, Erase, Inoculation, Oracle)}


def arms_where(test) -> str:
    """The names of the arms for which `test(arm)` holds (for error messages)."""
    return ", ".join(name for name, cls in ARMS.items() if test(cls()))


def arm_for(name: str) -> Arm:
    """The arm called `name` (the Config's `arm`)."""
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}; expected one of {', '.join(ARMS)}")
    return ARMS[name]()


__all__ = ["ARMS", "Absorb", "Arm", "DEPLOYS", "Erase", "FEATURES", "Inoculation", "Oracle", "RouteA", "RouteV", "Vanilla",
           "arm_for", "arms_where",
           "erase_direction"]
