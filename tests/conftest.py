"""Shared test setup: helper modules in tests/ are importable, and W&B never reaches a server."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# tests use tiny tensors on 2 shared cores: intra-op threads only contend (60x slower under load), here and in
# the processes tests start
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
