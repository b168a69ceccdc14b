"""Framework-free recommendation engine: numpy, scipy, torch, scikit-learn. Never Django."""
import os

# implicit and torch each bring an OpenMP runtime; idle threads of one spinning while the other works
# made Two-Tower epochs 5-10x slower after an ALS fit on 2 cores. Both read this when they first load,
# which is after this package is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
