"""Shared test setup: W&B never reaches a server, and tests run on one intra-op thread."""

import os

import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# tests use tiny tensors on 2 shared cores: intra-op threads only contend (60x slower under load), here and in
# the processes tests start
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# helper modules hold no tests; some import extras (wandb) that a run without them must not need
collect_ignore = ["helpers"]
