"""The C++ unit tests of micro_kernels (micro_kernels/tests/micro_kernels_tests.cc).

Builds the plain CMake project with -DMICRO_KERNELS_TESTS=ON into a temporary
directory, then runs the test binary: once through ctest (kernel, policy, SGD
and loss tests, no model) and once on two small trainable models converted here
with tflm_train.convert, which adds the Trainer tests (arena sizing, input
checks, learning, a float32 reference trainer, state round trip, no heap use).
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import keras

import tflm_train

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "micro_kernels"
BUILD_TIMEOUT = 300
RUN_TIMEOUT = 120


def _run(cmd, cwd, timeout):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _show(proc):
    return f"$ {' '.join(map(str, proc.args))}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def _network(seed):
    """Input(4) -> Dense(3, relu) -> Dense(2, softmax), with non-zero biases."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def test_binary(tmp_path_factory):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not on PATH")
    build = tmp_path_factory.mktemp("micro_kernels_build")
    configure = _run([cmake, "-S", SOURCE, "-B", build, "-DMICRO_KERNELS_TESTS=ON"], build, BUILD_TIMEOUT)
    assert configure.returncode == 0, "CMake configure failed\n" + _show(configure)
    jobs = str(max(2, min(8, os.cpu_count() or 2)))
    compile_ = _run([cmake, "--build", build, "-j", jobs], build, BUILD_TIMEOUT)
    assert compile_.returncode == 0, "CMake build failed\n" + _show(compile_)
    binary = build / "micro_kernels_tests"
    assert binary.exists(), "micro_kernels_tests was not built\n" + _show(compile_)
    return build, binary


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("micro_kernels_models")
    plain = tflm_train.convert(_network(1), loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.1))
    schedule = tflm_train.CosineDecay(100, alpha=0.1, warmup_steps=5, warmup_initial=0.01)
    momentum = tflm_train.convert(
        _network(2), loss="sparse_categorical_crossentropy",
        optimizer=tflm_train.SGD(0.1, momentum=0.9, weight_decay=0.01, schedule=schedule), batch_size=4)
    paths = out / "plain.tflite", out / "momentum.tflite"
    paths[0].write_bytes(plain)
    paths[1].write_bytes(momentum)
    return paths


def _summary(stdout):
    lines = [line for line in stdout.splitlines() if line.endswith(" failed") and " passed, " in line]
    return lines[-1] if lines else None


def test_cpp_unit_tests_without_model(test_binary):
    """What ctest runs: every test that needs no model."""
    build, _ = test_binary
    ctest = shutil.which("ctest") or str(Path(shutil.which("cmake")).with_name("ctest"))
    proc = _run([ctest, "--output-on-failure"], build, RUN_TIMEOUT)
    assert proc.returncode == 0, _show(proc)


def test_cpp_unit_tests_with_models(test_binary, model_files):
    _, binary = test_binary
    proc = _run([binary, *model_files], binary.parent, RUN_TIMEOUT)
    summary = _summary(proc.stdout)
    assert proc.returncode == 0 and summary is not None and summary.endswith(" 0 failed"), _show(proc)
    assert "SKIP" not in proc.stdout, _show(proc)
    passed = int(summary.split()[0])
    assert passed >= 35, _show(proc)
