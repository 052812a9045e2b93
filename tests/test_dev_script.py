"""`./dev` picks the torch build it would install (`./dev torch-command` prints it, installs nothing)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _torch_command(tmp_path: Path, gpu: bool, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / ("gpu" if gpu else "nogpu")
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "nvidia-smi"  # shadows any real nvidia-smi: lists one GPU, or fails like a GPU-less host
    fake.write_text("#!/bin/sh\n" + ("echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n" if gpu else "exit 9\n"))
    fake.chmod(0o755)
    full_env = {k: v for k, v in os.environ.items() if k != "VGROUT_TORCH_INDEX"}
    full_env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", **env)
    return subprocess.run([str(ROOT / "dev"), "torch-command"], capture_output=True, text=True, timeout=60,
                          env=full_env)


def test_gpu_machine_gets_the_pypi_build(tmp_path):
    res = _torch_command(tmp_path, gpu=True)
    assert res.returncode == 0 and res.stdout.strip().endswith("pip install -q torch==2.13.0"), res


def test_cpu_machine_uses_the_cpu_index_or_says_why_not(tmp_path):
    res = _torch_command(tmp_path, gpu=False)
    out = res.stdout.strip()
    assert res.returncode == 0, res.stderr
    if "--index-url" in out:
        assert out.endswith("torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    else:  # offline (this project's machines): plain pip, with the reason on stderr
        assert out.endswith("pip install -q torch==2.13.0")
        assert "https://download.pytorch.org/whl/cpu not reachable" in res.stderr


def test_an_explicit_index_wins(tmp_path):
    res = _torch_command(tmp_path, gpu=False, VGROUT_TORCH_INDEX="file:///opt/wheels-index")
    assert res.stdout.strip().endswith("torch==2.13.0 --index-url file:///opt/wheels-index")
