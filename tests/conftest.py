"""Shared test setup: pin torch to few threads (the CI machine has ~1 core of compute)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:  # env tests must run without torch imported; only pin when torch is installed
    import importlib.util

    if importlib.util.find_spec("torch") is not None and os.environ.get("VGROUT_TEST_NO_TORCH") != "1":
        import torch

        torch.set_num_threads(1)
except Exception as exc:  # pragma: no cover - setup must not hide a broken torch
    raise RuntimeError(f"could not pin torch threads: {exc}") from exc
