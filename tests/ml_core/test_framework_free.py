"""ml/core is framework-free: importing every module of it loads no Django and needs no settings."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = ["base", "collaborative", "content", "data", "features", "index", "metrics", "offline", "ranker", "registry",
           "retrieval", "train", "tuning", "two_tower"]


def test_the_engine_imports_without_django():
    code = (f"import importlib, sys\nfor name in {MODULES!r}: importlib.import_module('ml.core.' + name)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery')]\n"
            "print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
