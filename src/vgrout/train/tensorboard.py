"""Optional TensorBoard metrics beside metrics.jsonl (off by default; local event files only).

    sink = TensorBoardSink(run_dir / "tensorboard")   # needs the `tensorboard` package
    sink.write(row)                                   # every numeric field of a metrics row, at row["step"]

metrics.jsonl stays the record the reports read; this is a view of the same rows for people
who watch runs in TensorBoard. It writes event files and never starts a server or uploads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def require_tensorboard():
    """torch's SummaryWriter, or a clear error naming the package and the setting."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RuntimeError("tensorboard=true needs the `tensorboard` package: pip install tensorboard "
                           "(or leave tensorboard=false; metrics.jsonl is written either way)") from exc
    return SummaryWriter


class TensorBoardSink:
    """Scalar rows -> TensorBoard event files under `log_dir`, tagged `{prefix}/{field}`."""

    def __init__(self, log_dir: str | os.PathLike, prefix: str = "train") -> None:
        writer_cls = require_tensorboard()
        self.log_dir = Path(log_dir)
        self.prefix = prefix
        self.writer = writer_cls(log_dir=str(self.log_dir))

    def write(self, row: dict) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(float(value)):
                self.writer.add_scalar(f"{self.prefix}/{key}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class TeeSink:
    """Write each row to several sinks (e.g. the JsonlSink and a TensorBoardSink); close them all."""

    def __init__(self, *sinks) -> None:
        self.sinks = sinks

    def write(self, row: dict) -> None:
        for s in self.sinks:
            s.write(row)

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def with_tensorboard(sink, run_dir: str | os.PathLike, enabled: bool, prefix: str = "train"):
    """`sink` alone, or teed with a TensorBoardSink at RUN_DIR/tensorboard when `enabled`."""
    if not enabled:
        return sink
    return TeeSink(sink, TensorBoardSink(Path(run_dir) / "tensorboard", prefix))


__all__ = ["TeeSink", "TensorBoardSink", "require_tensorboard", "with_tensorboard"]
