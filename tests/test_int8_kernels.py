"""The int8 forward kernels (micro_kernels/src/kernels/int8/) against TensorFlow Lite
Micro's own reference integer kernels.

micro_kernels/tests/test_int8_kernels_tflm.cc runs every kernel and TFLM's reference
function (tflite::reference_integer_ops / reference_ops) on randomized shapes and
quantization parameters and requires byte-identical outputs; it also compares the
parameters our Prepare helpers derive from the tensors' scales with what TFLM's Prepare
functions compute. It needs TFLM's C++ source: CMake builds it only with
-DTFLM_DIR=<TFLM's Arduino library folder>, compiling the few TFLM sources it calls
where they lie. This file builds that one target into a temporary directory and runs
it; it skips when the environment variable TFLM_DIR is unset (CI points it at the
Arduino_TensorFlowLite fixture).

A second test compiles every int8 kernel header as the Arduino library does on its
oldest cores (-std=gnu++11), with warnings as errors; it needs no TFLM.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "micro_kernels"
INT8_HEADERS = sorted((SOURCE / "src" / "kernels" / "int8").glob("*.h"))
BUILD_TIMEOUT = 600
RUN_TIMEOUT = 300

# What the C++ test reports, one line per comparison: "  <kernel>: <N> cases byte-identical to TFLM".
EXPECTED_REPORTS = [
    "QuantizeMultiplier", "MultiplyByQuantizedMultiplier", "Int8ActivationRange",
    "ChannelMultipliers (PopulateConvolutionQuantizationParams)",
    "FullyConnectedMultiplier (CalculateOpDataFullyConnected)",
    "FullyConnectedInt8", "Conv2DInt8", "DepthwiseConv2DInt8", "AveragePoolInt8", "MaxPoolInt8",
    "AddInt8 (and PrepareAddInt8 against CalculateOpDataAdd)",
    "MeanInt8, same quantization (integer path)", "MeanInt8, rescaled (float path)",
    "PadInt8", "QuantizeInt8 (values)", "RequantizeInt8 (values)", "DequantizeInt8 (values, bitwise)",
    "SoftmaxExpOnNegative (values)", "SoftmaxOneOverOnePlusX (values)",
    "SoftmaxInt8 vs reference and CMSIS-NN (cases)",
]


def _run(cmd, cwd, timeout):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _show(proc):
    return f"$ {' '.join(map(str, proc.args))}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def _tflm_dir():
    tflm = os.environ.get("TFLM_DIR")
    if not tflm:
        pytest.skip("TFLM_DIR is not set: the int8 kernels are compared with TFLM's reference kernels, which "
                    "need TFLM's C++ source (set TFLM_DIR to its Arduino library folder, e.g. "
                    "Arduino_TensorFlowLite)")
    root = Path(tflm)
    # Set but wrong is a broken environment, not a reason to skip.
    assert (root / "src" / "tensorflow" / "lite" / "kernels" / "internal" / "quantization_util.cpp").exists(), (
        f"TFLM_DIR={tflm} holds no src/tensorflow/lite/kernels/internal/quantization_util.cpp "
        "(expected TFLM's Arduino library layout)")
    return root


def test_int8_kernels_match_tflm(tmp_path):
    """Every int8 kernel and Prepare helper is byte-identical to TFLM's, case by case."""
    tflm = _tflm_dir()
    cmake = shutil.which("cmake")
    assert cmake is not None, "cmake is not on PATH (bash scripts/setup.sh --test installs it)"
    build = tmp_path / "build"
    configure = _run([cmake, "-S", SOURCE, "-B", build, "-DMICRO_KERNELS_TESTS=ON", f"-DTFLM_DIR={tflm}"],
                     tmp_path, BUILD_TIMEOUT)
    assert configure.returncode == 0, "CMake configure failed\n" + _show(configure)
    jobs = str(max(2, min(8, os.cpu_count() or 2)))
    compile_ = _run([cmake, "--build", build, "--target", "test_int8_kernels_tflm", "-j", jobs], tmp_path,
                    BUILD_TIMEOUT)
    assert compile_.returncode == 0, "building test_int8_kernels_tflm failed\n" + _show(compile_)

    proc = _run([build / "test_int8_kernels_tflm"], build, RUN_TIMEOUT)
    assert proc.returncode == 0, "the int8 kernels differ from TFLM's\n" + _show(proc)
    summary = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert summary is not None and int(summary.group(1)) >= 14 and summary.group(2) == "0", _show(proc)
    counts = dict(re.findall(r"^  (.+): (\d+) cases byte-identical to TFLM$", proc.stdout, re.MULTILINE))
    missing = [name for name in EXPECTED_REPORTS if int(counts.get(name, 0)) == 0]
    assert not missing, f"no cases compared for {missing}\n" + _show(proc)
    print("\n" + "\n".join(f"{name}: {counts[name]} cases" for name in EXPECTED_REPORTS))


@pytest.mark.parametrize("std", ["gnu++11", "c++17"])
def test_int8_headers_build_as_arduino_cpp(tmp_path, std):
    """The headers are C++11 (the library builds as gnu++11 for some Arduino cores), warning-free."""
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler on PATH")
    assert INT8_HEADERS, "micro_kernels/src/kernels/int8/ holds no headers"
    source = tmp_path / "int8_headers.cc"
    source.write_text("".join(f'#include "kernels/int8/{h.name}"\n' for h in INT8_HEADERS)
                      + "int main() { return 0; }\n")
    proc = _run([compiler, f"-std={std}", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-pedantic",
                 "-fno-exceptions", "-fno-rtti", f"-I{SOURCE / 'src'}", source], tmp_path, BUILD_TIMEOUT)
    assert proc.returncode == 0, _show(proc)
