"""Data-parallel training of a neural model under torchrun: the launcher and the per-process entry point.

:func:`launch` runs ``python -m torch.distributed.run --standalone --nproc_per_node N -m
segue.models.neural.distributed --model NAME --store S --out M --config cfg.json``; every process then
runs :func:`main`, which sets up the process group (gloo on CPU, NCCL on GPUs, one GPU per process), fits
the registered model (its training loop sees the process group and wraps the net in
DistributedDataParallel) and lets rank 0 write the model directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

from segue.data.store import Store
from segue.errors import InputError, ModelError
from segue.io import read_json, write_json
from segue.models.base import get_model_class
from segue.models.neural.config import NeuralConfig, resolve_device


def launch(model_name: str, store_path, out_dir, config: NeuralConfig, nproc: int = 2, progress: bool = False,
           timeout: float | None = None) -> None:
    """Train model ``model_name`` with ``nproc`` processes under torchrun; rank 0 writes ``out_dir``."""
    store_path = store_path.path if isinstance(store_path, Store) else Path(store_path)
    if nproc < 1:
        raise InputError(f"nproc={nproc}: expected at least 1 process.")
    if resolve_device(config.device).type == "cuda" and nproc > torch.cuda.device_count():
        raise InputError(
            f"nproc={nproc} but {torch.cuda.device_count()} CUDA device(s): NCCL needs a GPU per process. "
            "Use --nproc up to the number of GPUs, or --device cpu for CPU processes (gloo)."
        )
    with tempfile.TemporaryDirectory(prefix="segue-ddp-") as tmp:
        config_path = Path(tmp) / "config.json"
        write_json(config_path, dataclasses.asdict(config))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", __name__, "--model", model_name, "--store", str(store_path), "--out", str(out_dir),
               "--config", str(config_path)] + (["--progress"] if progress else [])
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, config.threads or 1)))
        env.setdefault("PYTHONFAULTHANDLER", "1")  # a rank that dies of a signal prints where it was
        result = subprocess.run(cmd, env=env, timeout=timeout, capture_output=not progress, text=True)
    if result.returncode != 0:
        tail = (result.stderr or "")[-6000:] if not progress else ""
        raise ModelError(f"distributed training failed (exit {result.returncode}).\n{tail}")


def main(argv: list[str] | None = None) -> None:
    """torchrun entry point: every rank trains; rank 0 writes the model directory."""
    from segue.config import config_from_dict

    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="registered model name (e.g. meanvar)")
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", help="JSON file of the model's config fields")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    cls = get_model_class(args.model)
    config = config_from_dict(cls.Config, read_json(args.config)) if args.config else cls.Config()
    use_cuda = resolve_device(config.device).type == "cuda"
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        model = cls(config).fit(Store.open(args.store), progress=args.progress)
        if not distributed or dist.get_rank() == 0:
            model.save(args.out)
        if distributed:
            dist.barrier()
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
