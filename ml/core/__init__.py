"""Framework-free recommendation engine: numpy, scipy, torch, scikit-learn. Never Django."""
