"""Shared pytest setup for tflm_train.

The tests run against the *installed* tflm_train (it carries the compiled
`_core` binding and ships `converter/` as `tflm_train.converter`). Running
`python -m pytest` from the repository root puts the root on sys.path, where
the bare source tree `tflm_train/` would shadow the installed package and fail
to import; drop the root from sys.path before anything imports tflm_train.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow 2.21's oneDNN kernels return wrong batched convolutions and corrupt the heap
# in some strided 1x1 filter gradients (repro in tests/test_cnn_unseen.py); the oracle
# must be TensorFlow's plain kernels. Set before TensorFlow is first imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

_REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _REPO]
for _name in [n for n in sys.modules if n == "tflm_train" or n.startswith("tflm_train.")]:
    _file = getattr(sys.modules[_name], "__file__", None) or ""
    if _file.startswith(str(_REPO) + os.sep):
        del sys.modules[_name]

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python/NumPy/TensorFlow seeds."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
