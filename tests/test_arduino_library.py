"""The TflmTrain Arduino library (scripts/make_arduino_library.py, arduino/examples)
built the way the Arduino builder builds sketches (tests/arduino_builder.py) for a
Cortex-M4F board, with the tests' core (tests/arduino_shim), and run in QEMU's
mps2-an386 with Serial on semihosting.

Two boards, by their cores' flags (the cores themselves are not used):
- "nrf52840": a generic nRF52840 board as Adafruit's nRF52 core 1.x builds it
  (ARDUINO_ARCH_NRF52, hard float, -std=gnu++17) with its default optimization,
  -Ofast (compiler.optimization_flag: the core, every library, the sketch and the
  link), under which isfinite() and NaN comparisons fold away: the trainer's checks of
  untrusted floats read bits instead (micro_kernels/src/finite.h), and a sketch checks
  on this board that NaN and Inf are refused. The library's sources are also
  syntax-checked with -std=gnu++11, as the core's 0.2x versions compile;
- "nano33ble": the Arduino Nano 33 BLE as the Arduino mbed core builds it
  (ARDUINO_ARCH_MBED, softfp, -std=gnu++14, -funsigned-char, -Os): the only board whose
  macros the Arduino_TensorFlowLite library (TFLM) compiles with (its peripherals/
  files stop with #error "unsupported board" elsewhere), so TflmSketchTraining builds
  for it.

TFLM comes from the environment variable TFLM_DIR (its Arduino library folder). The
tests skip when TFLM_DIR, arm-none-eabi-g++ or qemu-system-arm is missing, and fail
instead when the environment variable CI is set. Compiled libraries are cached in
pytest's cache folder (.pytest_cache/d/arduino_objects), keyed by their content and the
flags: the first run compiles TFLM's 223 files (minutes on 2 cores), later ones reuse them.

Device and host agree closely, not bit for bit: newlib's expf and logf differ from
glibc's in the last bit for some arguments, and Arduino cores let GCC contract a*b+c
into fused multiply-adds (its default in GNU modes; the CMake build passes
-ffp-contract=off, which a library cannot ask of the Arduino builder); -Ofast adds
reassociation and reciprocals. The tolerances hold at -Os and at -Ofast with the
same margin (measured: see the tests' comments). A resumed run and an uninterrupted
one on the device are compared bit for bit.
"""

import concurrent.futures
import dataclasses
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import arduino_builder as ab
from arduino_sketch_data import ExampleData

REPO = Path(__file__).resolve().parent.parent
SHIM = REPO / "tests" / "arduino_shim"
CORTEX_M = REPO / "examples" / "cortex_m"
JOBS = max(1, min(4, os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class Board:
    name: str
    cflags: tuple
    cxxflags: tuple
    sflags: tuple
    ldflags: tuple
    compiler_version: str = ""
    cc: str = "arm-none-eabi-gcc"
    cxx: str = "arm-none-eabi-g++"
    ar: str = "arm-none-eabi-ar"


def _board(name, cpu, optimize, common, c_std, cxx_std, cxx_extra):
    """`optimize` goes into every compile (core, libraries, sketch, .S) and the link, as
    both cores' platform.txt pass their optimization flag."""
    shim = ("-DARDUINO_SHIM_QEMU",)  # the tests' board: QEMU, semihosting, a file as flash
    common = (optimize,) + common
    return Board(name, cflags=cpu + common + (c_std,) + shim,
                 cxxflags=cpu + common + (cxx_std, "-fno-exceptions", "-fno-rtti") + cxx_extra + shim,
                 sflags=cpu + common + shim, ldflags=cpu + (optimize,))


BOARDS = {
    "nrf52840": _board(
        "nrf52840", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), "-Ofast",
        ("-ffunction-sections", "-fdata-sections", "-nostdlib", "--param", "max-inline-insns-single=500",
         "-DARDUINO=10819", "-DARDUINO_NRF52840_FEATHER", "-DARDUINO_ARCH_NRF52", "-DARDUINO_NRF52_ADAFRUIT",
         "-DNRF52840_XXAA", "-DNRF52_SERIES"),
        "-std=gnu11", "-std=gnu++17", ("-fno-threadsafe-statics",)),
    "nano33ble": _board(
        "nano33ble", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16"), "-Os",
        ("-ffunction-sections", "-fdata-sections", "-nostdlib", "-funsigned-char",
         "-fno-delete-null-pointer-checks", "-fomit-frame-pointer", "-DARDUINO=10819",
         "-DARDUINO_ARDUINO_NANO33BLE", "-DARDUINO_ARCH_MBED_NANO", "-DARDUINO_ARCH_MBED", "-DNRF52840_XXAA",
         "-DTARGET_NRF52840", "-DARM_MATH_CM4", "-D__FPU_PRESENT=1"),
        "-std=gnu11", "-std=gnu++14", ()),
}
WARNINGS = ["-Wall", "-Wextra"]  # the IDE's "All" compiler warnings, for our own code


def _need(what, found, hint):
    if not found:
        message = f"{what} not found: {hint}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this fails instead of skipping)")
        pytest.skip(message)
    return found


def _tflm_dir():
    path = os.environ.get("TFLM_DIR")
    _need("TFLM_DIR", path, "set TFLM_DIR to the Arduino_TensorFlowLite library folder "
          "(e.g. /work/shared/third_party/Arduino_TensorFlowLite)")
    path = Path(path)
    _need(f"TFLM_DIR={path}/src/TensorFlowLite.h", (path / "src" / "TensorFlowLite.h").is_file(),
          "TFLM_DIR must be an Arduino_TensorFlowLite library folder")
    return path


class Builder:
    """Builds sketches for the boards, reusing each library's objects and each core."""

    def __init__(self, root, cache, library):
        self.root, self.cache, self.library = root, cache, library
        version = ab.run(["arm-none-eabi-g++", "--version"]).stdout.splitlines()[0]
        self.boards = {n: dataclasses.replace(b, compiler_version=version) for n, b in BOARDS.items()}
        self.cores, self.messages, self.sizes = {}, {}, {}
        self.libraries = {"TflmTrain": library}

    def core(self, board):
        if board.name not in self.cores:
            self.cores[board.name] = ab.build_core(board, SHIM, CORTEX_M, self.root / f"core-{board.name}", JOBS)[0]
        return self.cores[board.name]

    def build(self, board_name, sketch, defines=()):
        """sketch: the name of one of the library's examples, or a sketch folder."""
        board = self.boards[board_name]
        sketch_board = dataclasses.replace(board, cxxflags=board.cxxflags + tuple(f"-D{d}" for d in defines))
        folder = sketch if isinstance(sketch, Path) else self.library / "examples" / sketch
        sketch = folder.name
        work = self.root / f"{board_name}-{sketch}"
        ino_cpp, others, used = ab.preprocess_sketch(folder, sketch_board, SHIM, self.libraries, work / "sketch")
        include_dirs = [SHIM, *used]
        messages = ab.compile_all(sketch_board, ab.object_names(work / "sketch", [ino_cpp, *others]),
                                  work / "obj", include_dirs, WARNINGS, JOBS)
        objects = sorted((work / "obj").glob("*.o"))
        for lib_src in used:
            own = lib_src == self.library / "src"
            objs, logs = ab.build_library(board, lib_src, [SHIM, lib_src], self.cache, JOBS,
                                          warnings=tuple(WARNINGS) if own else ("-w",))
            objects += objs
            if own:
                messages.update({f"TflmTrain/src/{k}": v for k, v in logs.items()})
        elf = ab.link(board, objects, self.core(board), CORTEX_M / "mps2_an386.ld", work / f"{sketch}.elf")
        # Warnings in our code: the sketch's and TflmTrain's lines, not third-party headers.
        third_party = [str(p) for p in used if p != self.library / "src"]
        warnings = {}
        for source, text in messages.items():
            mine = [line for line in text.splitlines() if re.match(r"\S+:\d+:\d+: (warning|error)", line)
                    and not any(line.startswith(t) for t in third_party)]
            if mine:
                warnings[str(source)] = mine
        self.messages[(board_name, sketch)] = warnings
        self.sizes[(board_name, sketch)] = ab.size_of(elf, "arm-none-eabi-size")
        return elf, ino_cpp, used


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The library as scripts/make_arduino_library.py makes it, run without site-packages
    (python -I -S: the standard library only)."""
    out = tmp_path_factory.mktemp("arduino_libraries")
    ab.run([sys.executable, "-I", "-S", REPO / "scripts" / "make_arduino_library.py", out])
    return out / "TflmTrain"


@pytest.fixture(scope="module")
def builder(library, tmp_path_factory, request):
    _need("arm-none-eabi-g++", shutil.which("arm-none-eabi-g++"), "run bash scripts/setup_test_tools.sh")
    _need("qemu-system-arm", shutil.which("qemu-system-arm"), "run bash scripts/setup_test_tools.sh")
    try:
        cache = Path(request.config.cache.mkdir("arduino_objects"))
    except AttributeError:  # pytest's cache plugin disabled
        cache = tmp_path_factory.mktemp("arduino_objects")
    return Builder(tmp_path_factory.mktemp("arduino_build"), cache, library)


@pytest.fixture(scope="module")
def tflm_builder(builder):
    builder.libraries["Arduino_TensorFlowLite"] = _tflm_dir()
    return builder


def run_sketch(elf, run_dir, *args):
    run_dir.mkdir(parents=True, exist_ok=True)
    status, out = ab.run_qemu("qemu-system-arm", elf, args, run_dir)
    assert status == 0, f"{elf.name} exited with {status}:\n{out}"
    return out


def floats_from_bits(text):
    return np.array([struct.unpack("<f", struct.pack("<I", int(h, 16)))[0] for h in text.split()], np.float32)


def report(builder, key):
    flash, ram = builder.sizes[key]
    print(f"{key[1]} on {key[0]}: flash {flash} bytes, static RAM {ram} bytes")


# ---- the library folder --------------------------------------------------------------

def test_library_folder(library, tmp_path):
    props = dict(line.split("=", 1) for line in (library / "library.properties").read_text().splitlines() if line)
    version = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert props["name"] == "TflmTrain" and props["version"] == version
    for field in ("author", "maintainer", "sentence", "paragraph", "category", "url", "architectures"):
        assert props[field], field
    assert props["depends"] == "Arduino_TensorFlowLite" and props["includes"] == "TflmTrain.h"
    # url is required by the library specification; for now it is a placeholder (URL in
    # scripts/make_arduino_library.py), to replace once the project has a public home.
    assert re.match(r"https?://\S+$", props["url"])
    # The license: pyproject.toml's, named in LICENSE.txt with where its text is, while
    # the repository has no license file of its own (the script copies one once it has).
    spdx = re.search(r'(?m)^license\s*=\s*\{\s*text\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert spdx == "Apache-2.0"
    own = [n for n in ("LICENSE", "LICENSE.txt", "LICENSE.md") if (REPO / n).is_file()]
    for name in own:
        assert (library / name).read_bytes() == (REPO / name).read_bytes()
    if not own:
        note = " ".join((library / "LICENSE.txt").read_text().split())
        assert "Apache License, Version 2.0" in note and "SPDX identifier Apache-2.0" in note, note
        assert "<https://www.apache.org/licenses/LICENSE-2.0>" in note and len(note) < 600, note
    assert f"License: Apache-2.0 ({(own or ['LICENSE.txt'])[0]})." in (library / "README.md").read_text()
    # Only the library's own header at the top of src/ (every library's src/ is on the
    # include path of the whole build); everything else below tflm_train/.
    assert sorted(p.name for p in (library / "src").iterdir()) == ["TflmTrain.h", "tflm_train"]
    files = sorted(p for p in (library / "src").rglob("*") if p.is_file())
    assert not [p for p in files if p.suffix not in (".h", ".cpp")], "only .h and .cpp (Arduino IDE 1.x skips .cc)"
    for f in files:  # every quoted include resolves inside the library, relative to its file
        for name in re.findall(r'(?m)^\s*#\s*include\s*"([^"]+)"', f.read_text()):
            assert (f.parent / name).resolve().is_file(), f"{f}: {name}"
            assert library in (f.parent / name).resolve().parents, f"{f}: {name} leaves the library"
    # The same sources as the CMake library, .cc renamed.
    cmake = set(re.findall(r"src/(\S+)\.cc", (REPO / "micro_kernels" / "CMakeLists.txt").read_text()))
    shipped = {str(p.relative_to(library / "src" / "tflm_train" / "internal"))[:-4] for p in files
               if p.suffix == ".cpp"}
    assert shipped == cmake, f"micro_kernels/src .cc files vs CMakeLists.txt: {shipped ^ cmake}"
    top = (library / "src" / "TflmTrain.h").read_text()
    assert '#include "tflm_train/trainer.h"' in top and '#include "tflm_train/flash_storage.h"' in top
    examples = sorted(p.name for p in (library / "examples").iterdir())
    assert examples == ["ResumeAfterReboot", "TflmSketchTraining", "TrainOnDevice"]
    assert all((library / "examples" / e / f"{e}.ino").is_file() for e in examples)
    # Idempotent: a second run over an existing folder gives the same tree.
    for _ in range(2):
        ab.run([sys.executable, "-I", "-S", REPO / "scripts" / "make_arduino_library.py", tmp_path])
    assert ab.tree_digest(tmp_path / "TflmTrain") == ab.tree_digest(library)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TflmTrain"]


def test_library_script_refuses_what_it_cannot_place(tmp_path):
    """An include that resolves to no file, or a file the script does not know, stops it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_arduino_library", REPO / "scripts" / "make_arduino_library.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    repo = tmp_path / "repo"
    (repo / "micro_kernels" / "include" / "tflm_train").mkdir(parents=True)
    (repo / "micro_kernels" / "src").mkdir(parents=True)
    (repo / "arduino" / "examples" / "Demo").mkdir(parents=True)
    (repo / "arduino" / "examples" / "Demo" / "Demo.ino").write_text("void setup() {}\nvoid loop() {}\n")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\n')
    with pytest.raises(script.LibraryError, match="no license in \\[project\\]"):
        script.make_library(tmp_path / "out", repo=repo)
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\nlicense = "MIT"\n')
    (repo / "micro_kernels" / "include" / "tflm_train" / "trainer.h").write_text("#pragma once\n")
    (repo / "micro_kernels" / "src" / "a.cc").write_text('#include "tflm_train/trainer.h"\n#include "b.h"\n')
    with pytest.raises(script.LibraryError, match='b.h" resolves to no file'):
        script.make_library(tmp_path / "out", repo=repo)
    assert not (tmp_path / "out" / "TflmTrain").exists() and not list((tmp_path / "out").iterdir())
    (repo / "micro_kernels" / "src" / "b.h").write_text("")
    (repo / "micro_kernels" / "src" / "notes.txt").write_text("")
    with pytest.raises(script.LibraryError, match="not a .h or .cc file"):
        script.make_library(tmp_path / "out", repo=repo)
    (repo / "micro_kernels" / "src" / "notes.txt").unlink()
    lib = script.make_library(tmp_path / "out", repo=repo)
    assert (lib / "src" / "tflm_train" / "internal" / "a.cpp").read_text() == (
        '#include "../trainer.h"\n#include "b.h"\n')
    assert "version=1.2.3" in (lib / "library.properties").read_text()
    assert "https://spdx.org/licenses/MIT.html" in (lib / "LICENSE.txt").read_text()
    (repo / "LICENSE").write_text("the project's own license text\n")  # copied, instead of the note
    lib = script.make_library(tmp_path / "out", repo=repo)
    assert (lib / "LICENSE").read_text() == "the project's own license text\n" and not (lib / "LICENSE.txt").exists()
    assert "License: MIT (LICENSE)." in (lib / "README.md").read_text()


def test_example_data_is_generated():
    """The checked-in model and sample files are what make_example_models.py writes."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        ab.run([sys.executable, REPO / "arduino" / "examples" / "make_example_models.py", "--out-dir", out])
        for f in sorted(Path(out).rglob("*.*")):
            checked_in = REPO / "arduino" / "examples" / f.relative_to(out)
            assert checked_in.read_text() == f.read_text(), f"{checked_in} is stale: run make_example_models.py"


# ---- builds --------------------------------------------------------------------------

def test_sketch_preprocessing(builder):
    """The .ino.cpp as the builder makes it: Arduino.h first, prototypes before the first
    function definition, #line back into the .ino."""
    _, ino_cpp, used = builder.build("nrf52840", "TrainOnDevice")
    text = ino_cpp.read_text()
    assert text.startswith("#include <Arduino.h>\n#line 1 ")
    protos = text.index("void printAccuracy(unsigned int count, unsigned int total);")
    first_definition = text.index("void printAccuracy(unsigned int count, unsigned int total) {")
    assert protos < text.index("void setup();") < text.index("void loop();") < first_definition
    assert [p.parent.name for p in used] == ["TflmTrain"]
    # TflmTrain needs nothing but its own headers and the C library.
    library = builder.library / "src"
    assert ab.missing_headers(builder.boards["nrf52840"], ab.sources(library), [SHIM, library]) == []


@pytest.mark.parametrize("board", ["nrf52840", "nano33ble"])
def test_train_on_device(builder, board, tmp_path):
    """Accuracy rises and loss falls, epoch after epoch, as on the host's trainer."""
    import tflm_train

    elf, _, _ = builder.build(board, "TrainOnDevice")
    assert builder.messages[(board, "TrainOnDevice")] == {}, "warnings with -Wall -Wextra"
    out = run_sketch(elf, tmp_path)
    print(out)
    report(builder, (board, "TrainOnDevice"))
    epochs = [tuple(map(float, m)) for m in re.findall(
        r"epoch \d+/\d+: loss ([\d.]+), train accuracy [\d.]+% \((\d+)/48\), test accuracy [\d.]+% \((\d+)/24\), "
        r"skipped (\d+) of 48", out)]
    before = re.search(r"before training: test loss ([\d.]+), test accuracy [\d.]+% \((\d+)/24\)", out)
    assert len(epochs) == 6 and before and "done" in out, out
    losses = [e[0] for e in epochs]
    assert losses[-1] < 0.75 * losses[0] and all(b < a for a, b in zip(losses, losses[1:])), losses
    assert epochs[-1][2] >= int(before.group(2)) + 8 and epochs[-1][2] >= 18, (before.group(0), epochs)

    data = ExampleData(REPO / "arduino" / "examples" / "TrainOnDevice")
    host = tflm_train.MicroTrainer(data.model)
    x, y = data.arrays("train")
    # The loss is printed with 4 decimals (rounding: up to 5e-5). Measured, the printed
    # losses differ from the host's by at most 4.2e-5 at -Os and at -Ofast alike: the
    # rounding, and the same per-epoch counts.
    differences = []
    for got in epochs:
        results = [host.train_step(x[i:i + 1], y[i:i + 1]) for i in range(len(x))]
        correct = sum(r.correct > 0.5 for r in results)
        test_correct = int(np.sum(np.argmax(host.predict(data.arrays("test")[0]), 1) == data.arrays("test")[1]))
        expected = (np.mean([np.float32(r.loss) for r in results]), correct, test_correct,
                    sum(r.skipped for r in results))
        differences.append(abs(got[0] - expected[0]))
        assert differences[-1] <= 2e-4 and got[1:] == expected[1:], (got, expected)
    print(f"largest difference of a printed epoch loss to the host's: {max(differences):.2g}")


def test_tflm_sketch_training(tflm_builder, tmp_path):
    """TFLM infers over the model array the trainer trains: its outputs change with the
    training and are those of the host's trainer after the same steps."""
    import tflm_train

    elf, _, used = tflm_builder.build("nano33ble", "TflmSketchTraining", defines=["TFLM_TRAIN_PRINT_BITS=1"])
    assert sorted(p.parent.name for p in used) == ["Arduino_TensorFlowLite", "TflmTrain"]
    assert tflm_builder.messages[("nano33ble", "TflmSketchTraining")] == {}, "warnings with -Wall -Wextra"
    bad = ["9 9", "3", "+3 -0", "3 1x", "3 -1"]  # out of range, no label, signs, trailing text
    lines = [f"{i} {i % 2}" for _ in range(3) for i in range(8)] + bad + ["show"]
    (tmp_path / "serial.txt").write_text("\n".join(lines) + "\n")
    out = run_sketch(elf, tmp_path, "input=serial.txt")
    print(out)
    report(tflm_builder, ("nano33ble", "TflmSketchTraining"))
    bits = re.findall(r"(?m)^bits ([0-9A-F ]+)$", out)
    assert len(bits) == 2 and out.count("trained on sample") == 24 and out.count("? expected") == len(bad), out
    before, after = floats_from_bits(bits[0]).reshape(8, 2), floats_from_bits(bits[1]).reshape(8, 2)
    assert not np.array_equal(before, after)

    data = ExampleData(REPO / "arduino" / "examples" / "TflmSketchTraining")
    x, _ = data.arrays("sketch")
    host = tflm_train.MicroTrainer(data.model)
    np.testing.assert_allclose(before, host.predict(x), rtol=0, atol=2e-6)
    for line in lines[:24]:
        i, label = map(int, line.split())
        host.train_step(x[i:i + 1], np.array([label], np.float32))
    expected = host.predict(x)
    np.testing.assert_allclose(after, expected, rtol=0, atol=2e-6)
    # And what the host's TFLM (the pip runtime) infers from the host-trained model.
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(host.model_bytes))
    for i in range(8):
        interpreter.set_input(x[i:i + 1], 0)
        interpreter.invoke()
        np.testing.assert_allclose(after[i], interpreter.get_output(0)[0], rtol=0, atol=2e-6)
    assert np.all(np.argmax(after, 1) == np.arange(8) % 2), after  # it learned the bars
    print(f"largest difference to the host's trainer: {np.max(np.abs(after - expected)):.3g}, "
          f"bit-identical outputs: {int(np.sum(after == expected))} of {after.size}")


def test_resume_after_reboot(builder, tmp_path):
    """Run 1 trains and saves, run 2 loads and goes on: the end is that of one run; and
    the host's trainer reads the flash the device wrote, the device the host's."""
    import tflm_train

    elf, _, _ = builder.build("nrf52840", "ResumeAfterReboot", defines=["TFLM_TRAIN_PRINT_BITS=1"])
    assert builder.messages[("nrf52840", "ResumeAfterReboot")] == {}, "warnings with -Wall -Wextra"
    report(builder, ("nrf52840", "ResumeAfterReboot"))
    data = ExampleData(REPO / "arduino" / "examples" / "ResumeAfterReboot")
    x, y = data.arrays("train")
    xt, _ = data.arrays("test")

    def final_bits(out):
        m = re.search(r"(?m)^bits ([0-9A-F ]+)$", out)
        assert m and "finished: 96 steps" in out, out
        return floats_from_bits(m.group(1)).reshape(len(xt), -1)

    def host_after(steps, trainer=None):
        trainer = trainer or tflm_train.MicroTrainer(data.model)
        for s in range(int(trainer.counters["steps"]), steps):
            trainer.train_step(x[s % 48:s % 48 + 1], y[s % 48:s % 48 + 1])
        return trainer

    # Within 2e-6 of the host: close as long as no TinyProp kept-output count (a rounded
    # product) lands on the other side of .5 from a last-bit difference; it does not here.
    # Measured: 6e-8 at -Os and at -Ofast (the board's flags), whose outputs differ from
    # each other's by up to 9e-8 (reassociation, reciprocals): the same margin.
    close = dict(rtol=0, atol=2e-6, err_msg="device and host trainers parted ways (see the module docstring)")
    once = final_bits(run_sketch(elf, tmp_path / "once", "idle=20"))  # no reset at all
    # Run 1: "power lost" after 13 steps; the checkpoint of step 8 is in flash.
    first = run_sketch(elf, tmp_path / "reset", "loops=13", "idle=20")
    assert "no checkpoint" in first and "step 8/96" in first and "step 16/96" not in first, first
    flash = tmp_path / "reset" / "flash.bin"
    image = flash.read_bytes()
    second = run_sketch(elf, tmp_path / "reset", "idle=20")
    print(first + second)
    assert "resumed from the checkpoint at step 8" in second
    resumed = final_bits(second)
    assert np.array_equal(resumed.view(np.uint32), once.view(np.uint32)), "resumed run differs from one run"
    host_once = host_after(96).predict(xt)
    np.testing.assert_allclose(once, host_once, **close)
    print(f"device vs host after 96 steps: largest difference {np.max(np.abs(once - host_once)):.3g}, "
          f"bit-identical outputs {int(np.sum(once == host_once))} of {once.size}")

    # The host loads the device's flash (as after run 1) and continues.
    (tmp_path / "device.bin").write_bytes(image)
    host = tflm_train.MicroTrainer(data.model)
    assert host.load_checkpoint(tmp_path / "device.bin") and host.counters["steps"] == 8
    np.testing.assert_allclose(host_after(96, host).predict(xt), once, **close)
    # The device loads the host's flash: 40 steps on the host, 56 on the device.
    host = host_after(40)
    (tmp_path / "host").mkdir()
    host.save_checkpoint(tmp_path / "host" / "flash.bin", page_size=4096, program_size=4)
    out = run_sketch(elf, tmp_path / "host", "idle=20")
    assert "resumed from the checkpoint at step 40" in out, out
    np.testing.assert_allclose(final_bits(out), host_after(96, host).predict(xt), **close)


# ---- what the boards' cores and TFLM's Arduino library need --------------------------

def test_tflm_library_supports_only_nano33ble(builder, tmp_path):
    """Why TflmSketchTraining builds for the Nano 33 BLE: with a generic nRF52840 board's
    macros, TensorFlowLite.h and TFLM's board files stop with #error "unsupported board"
    (the Arduino builder compiles every file of a library, so no TFLM sketch builds)."""
    tflm = _tflm_dir()
    board = builder.boards["nrf52840"]
    failing = []
    for f in [tflm / "src" / "TensorFlowLite.h", *sorted((tflm / "src" / "peripherals").glob("*.cpp"))]:
        cmd = ab.compile_command(board, f, tmp_path / "probe.o", [SHIM, tflm / "src"], ["-w"])
        if f.suffix == ".h":
            cmd[1:1] = ["-x", "c++"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            failing.append(f.name)
            assert 'unsupported board' in proc.stderr, proc.stderr
    assert failing == ["TensorFlowLite.h", "button_arduino.cpp", "i2c_arduino.cpp", "i2s_nrf52840.cpp",
                       "led_arduino.cpp"], failing


# ---- -Ofast and older cores ----------------------------------------------------------

# A sketch of the tests, not an example: what the trainer and NrfFlashStorage refuse,
# on the -Ofast board. Runs with TrainOnDevice's model.
REFUSALS_SKETCH = r"""
#include <TflmTrain.h>
#include "NrfFlashStorage.h"
#include "model_data.h"

alignas(16) uint8_t arena[g_model_trainer_arena_size];
tflm_train::Trainer trainer;

float fromBits(uint32_t bits) {  // made at run time: the compiler cannot know it is NaN
  volatile uint32_t v = bits;
  const uint32_t b = v;
  float f;
  memcpy(&f, &b, sizeof(f));
  return f;
}

void setup() {
  Serial.println(static_cast<int>(trainer.Init(g_model, g_model_len, arena, sizeof(arena))));
  const uint32_t nan_and_inf[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7f800000u, 0xff800000u};
  for (uint32_t bits : nan_and_inf) {
    float x[g_model_input_size] = {}, label = 1.0f;
    tflm_train::StepResult r;
    x[3] = fromBits(bits);
    Serial.print(static_cast<int>(trainer.TrainStep(x, g_model_input_size, &label, 1, 1, &r, nullptr)));
    x[3] = 0.0f;
    label = fromBits(bits);
    Serial.println(static_cast<int>(trainer.TrainStep(x, g_model_input_size, &label, 1, 1, &r, nullptr)));
  }
  NrfFlashStorage flash(kFlashRegionStart);  // up to 0xED000 on Adafruit's core
  Serial.print("steps ");
  Serial.print(static_cast<unsigned long>(trainer.counters().steps));
  Serial.print(" flash ");
  Serial.print(flash.begin(0xD000));
  Serial.print(flash.begin(0xE000));
  Serial.println(flash.begin(0x1800));
}

void loop() {}
"""


def test_refusals_at_ofast(builder, tmp_path):
    """At -Ofast (the nrf52840 board), NaN and Inf samples and labels are refused
    (kBadInput = 8, kBadLabel = 9) and train nothing; NrfFlashStorage takes a region up
    to Adafruit's file system (0xED000) and no further, in whole pages only."""
    sketch = tmp_path / "Refusals"
    sketch.mkdir()
    (sketch / "Refusals.ino").write_text(REFUSALS_SKETCH)
    for f in ("model_data.h", "model_data.cpp"):
        shutil.copy(REPO / "arduino" / "examples" / "TrainOnDevice" / f, sketch / f)
    shutil.copy(REPO / "arduino" / "examples" / "ResumeAfterReboot" / "NrfFlashStorage.h", sketch)
    assert "-Ofast" in builder.boards["nrf52840"].cxxflags
    elf, _, _ = builder.build("nrf52840", sketch)
    assert builder.messages[("nrf52840", "Refusals")] == {}, "warnings with -Wall -Wextra"
    out = run_sketch(elf, tmp_path / "run").replace("\r", "")
    assert out == "0\n" + "89\n" * 5 + "steps 0 flash 100\n", out


def test_library_compiles_as_cpp11(builder, tmp_path):
    """Adafruit's nRF52 core 0.2x compiles with -std=gnu++11: every source of the library
    and TflmTrain.h pass GCC's syntax check in that mode, with the nrf52840 board's other
    flags and -Wall -Wextra, without a message."""
    board = builder.boards["nrf52840"]
    flags = ["-std=gnu++11" if f.startswith("-std=") else f for f in board.cxxflags]
    assert flags.count("-std=gnu++11") == 1
    src = builder.library / "src"
    top = tmp_path / "top.cpp"
    top.write_text("#include <TflmTrain.h>\n")
    files = [top, *ab.sources(src)]
    assert len(files) > 10 and all(f.suffix == ".cpp" for f in files)

    def check(f):
        proc = subprocess.run([board.cxx, *flags, *WARNINGS, "-fsyntax-only", f"-I{SHIM}", f"-I{src}", str(f)],
                              capture_output=True, text=True)
        return f.name, proc.returncode, proc.stderr

    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        failed = [r for r in pool.map(check, files) if r[1] or r[2]]
    assert not failed, "\n".join(f"{name}: {err}" for name, _, err in failed)
