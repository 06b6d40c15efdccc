"""Shared pytest setup for tflm_train.

The tests run against the *installed* tflm_train, which carries the compiled
`_core` binding: run them with `pytest` from the checkout (`python -m pytest`
would put the source tree, which has no `_core`, first on sys.path).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow 2.21's oneDNN kernels return wrong batched convolutions and corrupt the heap
# in some strided 1x1 filter gradients (repro in tests/test_cnn_unseen.py); the oracle
# must be TensorFlow's plain kernels. Set before TensorFlow is first imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python/NumPy/TensorFlow seeds."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
