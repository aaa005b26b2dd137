"""Speed and memory benchmarks of the simulator gate: ``python -m benchmarks``."""
