"""The C++ under sanitizers, as the trainer's untrusted inputs reach it: the libFuzzer
harnesses of micro_kernels/fuzz (model bytes, training-state bytes, samples and
labels, checkpoint images) replay the converter-made seed corpus and every committed
regression input, then each runs a short fixed number of mutated inputs; and the C++ unit tests run
once with every test under AddressSanitizer and UBSan. benchmarks/fuzz.py is the long
run; this is the part that fits in the suite (seconds per harness).

Needs clang with libFuzzer (scripts/setup_test_tools.sh installs Debian's clang and
libclang-rt-14-dev); skipped with the reason when it is missing.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "micro_kernels" / "fuzz"
# Mutated inputs per harness: the model harness is ~10x faster than the others
# (they initialise the CNN fixture on every input).
RUNS = {"model": 4000, "state": 600, "samples": 600, "checkpoint": 600}


def _run(cmd, timeout, **kwargs):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory):
    if shutil.which("clang++") is None or shutil.which("cmake") is None:
        pytest.skip("clang++ (libFuzzer) or cmake is not installed: bash scripts/setup_test_tools.sh")
    build = tmp_path_factory.mktemp("fuzz_build")
    env = dict(os.environ, CC="clang", CXX="clang++")
    configure = _run(["cmake", "-S", ROOT / "micro_kernels", "-B", build, "-DMICRO_KERNELS_FUZZ=ON"], 300, env=env)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = _run(["cmake", "--build", build, "-j", "2"], 600)
    if compiled.returncode != 0 and "libclang_rt.fuzzer" in compiled.stdout + compiled.stderr:
        pytest.skip("clang has no libFuzzer runtime: apt-get install libclang-rt-14-dev")
    assert compiled.returncode == 0, compiled.stdout[-3000:] + compiled.stderr[-3000:]
    return build / "fuzz"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz_corpus")
    made = _run([sys.executable, FUZZ / "make_corpus.py", out], 600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert made.returncode == 0, made.stderr[-3000:]
    for harness in RUNS:
        assert len(os.listdir(out / harness)) >= 3, harness
    return out


@pytest.mark.parametrize("harness", list(RUNS))
def test_harness_replays_corpus_and_regressions(harnesses, corpus, harness):
    inputs = [corpus / harness]
    regressions = FUZZ / "regressions" / harness
    if regressions.is_dir():
        inputs.append(regressions)
    proc = _run([harnesses / f"fuzz_{harness}", *inputs, "-runs=0"], 600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "INITED" in proc.stderr or "DONE" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("harness", list(RUNS))
def test_harness_survives_mutated_inputs(harnesses, corpus, harness, tmp_path):
    work = tmp_path / "corpus"
    shutil.copytree(corpus / harness, work)
    proc = _run([harnesses / f"fuzz_{harness}", work, f"-runs={RUNS[harness]}", "-seed=1", "-max_len=65536",
                 "-timeout=20", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"], 900)
    found = [p.name for p in tmp_path.iterdir() if p.is_file()]
    assert proc.returncode == 0 and not found, f"findings {found}\n{proc.stderr[-5000:]}"
    assert "stat::number_of_executed_units: " in proc.stderr


def test_cpp_unit_tests_under_asan_and_ubsan(tmp_path):
    """Every C++ unit test once against the library built with -fsanitize=address,undefined."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not on PATH")
    configure = _run(["cmake", "-S", ROOT / "micro_kernels", "-B", tmp_path, "-DMICRO_KERNELS_TESTS=ON",
                      "-DMICRO_KERNELS_SANITIZE=ON"], 300)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    if "no -fsanitize=address,undefined" in configure.stdout:
        pytest.skip("the C++ compiler has no AddressSanitizer/UBSan")
    compiled = _run(["cmake", "--build", tmp_path, "-j", "2"], 900)
    assert compiled.returncode == 0, compiled.stdout[-3000:] + compiled.stderr[-3000:]
    ctest = shutil.which("ctest") or str(Path(shutil.which("cmake")).with_name("ctest"))
    proc = _run([ctest, "--output-on-failure"], 900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "100% tests passed" in proc.stdout
