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


def pytest_collection_modifyitems(config, items):
    """Files holding a test marked slow come first (otherwise collection order). Under xdist
    (`--dist loadfile --no-loadscope-reorder` in pyproject.toml) files are handed to the workers in
    this order, so a long file starts early instead of last, running alone while the other worker idles."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within each group is kept
