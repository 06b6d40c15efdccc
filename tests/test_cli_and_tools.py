"""The tflm-train CLI end to end."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tflm_train.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.save(d / "mlp.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    np.savez(d / "data.npz", x_train=x[:90], y_train=y[:90], x_test=x[90:], y_test=y[90:])
    return d


def test_convert_inspect_train(workdir):
    r = run_cli("convert", "mlp.keras", "-o", "mlp.tflite", "--loss", "sparse_categorical_crossentropy",
                "--learning-rate", "0.1", "--policy", "tinypropv2:tau=0.3",
                "--train-last", "1", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert (workdir / "mlp.tflite").exists()

    r = run_cli("inspect", "mlp.tflite", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "trainable parameters: 27 in 1 layers" in r.stdout  # only "out": 8*3 + 3
    assert "TinyPropV2" in r.stdout and "tau=0.3" in r.stdout
    assert "arena bytes" in r.stdout

    r = run_cli("train", "mlp.tflite", "--data", "data.npz", "--epochs", "2", "-q", "-o", "trained.tflite",
                cwd=workdir)
    assert r.returncode == 0, r.stderr
    import tflm_train

    before = tflm_train.MicroTrainer(str(workdir / "mlp.tflite"))
    after = tflm_train.MicroTrainer(str(workdir / "trained.tflite"))
    x = np.load(workdir / "data.npz")["x_test"]
    assert not np.array_equal(before.predict(x), after.predict(x))
    assert "180 samples" in r.stdout  # 2 epochs x 90


def test_cli_errors_are_messages_not_tracebacks(workdir):
    r = run_cli("inspect", "mlp.keras", cwd=workdir)  # not a .tflite
    assert r.returncode == 1
    assert "error:" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("convert", "mlp.keras", "--loss", "mse", "--policy", "bogus", cwd=workdir)
    assert r.returncode == 2 and "unknown policy" in r.stderr


def test_compare_writes_table_and_plots(workdir):
    out = workdir / "cmp"
    r = run_cli("compare", "mlp.keras", "--data", "data.npz", "--loss", "sparse_categorical_crossentropy",
                "--epochs", "2", "--learning-rate", "0.1",
                "--policies", "full", "tinypropv2", "--out-dir", str(out), "-q", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "keras fit (full)" in r.stdout and "C++ TinyPropV2()" in r.stdout
    for name in ("accuracy.png", "loss.png", "effort.png", "compare.json"):
        assert (out / name).stat().st_size > 0
