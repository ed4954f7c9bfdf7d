"""dlpipe: fast.ai Part 2 systems as one reproducible DVC pipeline."""
import os as _os

# Idle OpenMP threads sleep instead of spin-waiting. On a busy or small CPU box (2 cores shared by a
# stage and its data workers) spinning made training and precompute 5-10x slower; set the variable
# yourself to override. It must be set before torch loads OpenMP, and every stage imports dlpipe first.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
