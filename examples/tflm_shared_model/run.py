"""Builds and runs the shared-model program (TFLM + tflm_train over one model array) on
the host and on QEMU's Cortex-M4F, for the MLP, the papers' CNN, a MobileNet-style
net and the CNN with an int8 backbone (examples/cortex_m/make_data.py --model; for that
one also the split program: TFLM runs the backbone, the trainer the head), and prints what the
add-on costs: flash and RAM of TFLM alone and of TFLM + trainer, and instructions per
Invoke and per TrainStep for each policy.

    TFLM_DIR=<Arduino_TensorFlowLite> python examples/tflm_shared_model/run.py [--out build/sm] [--train 16]

Needs cmake, a host C++ compiler, arm-none-eabi-g++ and qemu-system-arm
(scripts/setup_test_tools.sh installs them). tests/test_tflm_integration.py uses the same
functions and checks every output against the host MicroTrainer.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent
TIMEOUT = 1800
POLICIES = ("full", "static0.3", "tinyprop", "tinypropv2")


def _run(cmd, timeout=TIMEOUT):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"$ {' '.join(map(str, cmd))}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def make_data(out_dir, model, train):
    """The model (.tflite, the export pair) and an MNIST slice, via examples/cortex_m/make_data.py."""
    _run([sys.executable, EXAMPLES / "cortex_m" / "make_data.py", "--out-dir", out_dir, "--model", model,
          "--train", str(train), "--test", str(train)])
    return Path(out_dir)


def build(build_dir, data_dir, tflm_dir, cortex_m):
    """Configures (or re-configures: TFLM is compiled once per build directory) and builds
    the programs; returns the paths of tflm_shared_model, tflm_inference_only and
    tflm_split_training (None unless the data has a split backbone: cnn_int8)."""
    cmd = ["cmake", "-S", HERE, "-B", build_dir, f"-DTFLM_DIR={tflm_dir}", f"-DSHARED_MODEL_DATA_DIR={data_dir}"]
    if cortex_m:
        cmd.append(f"-DCMAKE_TOOLCHAIN_FILE={EXAMPLES / 'cortex_m' / 'arm-none-eabi.cmake'}")
    _run(cmd)
    _run(["cmake", "--build", build_dir, "-j", str(max(2, min(8, os.cpu_count() or 2)))])
    suffix = ".elf" if cortex_m else ""
    split = Path(build_dir) / f"tflm_split_training{suffix}"
    return (Path(build_dir) / f"tflm_shared_model{suffix}", Path(build_dir) / f"tflm_inference_only{suffix}",
            split if (Path(data_dir) / "backbone_data.cpp").exists() else None)


def execute(program, cortex_m):
    """Runs a program (in QEMU for Cortex-M) and returns its output; it must print PASS."""
    if cortex_m:
        cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting", "-icount", "shift=0",
               "-kernel", program]
    else:
        cmd = [program]
    # Semihosting output goes to stderr when stdout is not a terminal: both are read.
    proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=TIMEOUT)
    if proc.returncode != 0 or "PASS" not in proc.stdout:
        raise RuntimeError(f"{program} failed:\n{proc.stdout[-4000:]}")
    return proc.stdout


def parse(stdout):
    """{policy: [(skipped, outputs as float32 bits)]}, {policy: cost fields}, other fields."""
    import numpy as np

    outputs, costs, fields = {}, {}, {}
    for line in stdout.splitlines():
        m = re.match(r"OUT (\S+) (\d+) skipped=([01]) ([0-9a-f,]+)$", line)
        if m:
            bits = np.array([int(v, 16) for v in m.group(4).split(",")], np.uint32)
            outputs.setdefault(m.group(1), []).append((m.group(3) == "1", bits.view(np.float32)))
        elif line.startswith("COST "):
            _, name, *rest = line.split()
            costs[name] = {k: int(v) for k, v in (f.split("=") for f in rest)}
        elif line.split(" ", 1)[0] in ("ARENA", "INFER", "LARGEST_DIFFERENCE"):
            fields.update(f.split("=") for f in line.split()[1:])
    return outputs, costs, fields


def sizes(elf):
    """Flash (code + read-only data + .data's load image) and RAM (.data + .bss) of a firmware."""
    proc = _run(["arm-none-eabi-size", "-A", elf])
    section = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            section[parts[0]] = int(parts[1])
    flash = sum(section.get(s, 0) for s in (".text", ".rodata", ".ARM.exidx", ".init_array", ".data"))
    ram = sum(section.get(s, 0) for s in (".data", ".bss"))
    return {"flash": flash, "ram": ram, "model_in_ram": section.get(".data", 0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="build/tflm_shared_model", help="build directory (default %(default)s)")
    parser.add_argument("--train", type=int, default=16, help="training samples per policy (default %(default)s)")
    args = parser.parse_args()
    tflm_dir = os.environ.get("TFLM_DIR")
    if not tflm_dir:
        sys.exit("set TFLM_DIR to TFLM's Arduino library source (Arduino_TensorFlowLite)")
    out = Path(args.out).resolve()
    for model in ("mlp", "cnn", "mobile", "cnn_int8"):
        data = make_data(out / f"data_{model}", model, args.train)
        for cortex_m in (False, True):
            where = "cortex-m4f" if cortex_m else "host"
            shared, alone, split = build(out / f"build_{where}", data, tflm_dir, cortex_m)
            _, costs, fields = parse(execute(shared, cortex_m))
            print(f"{model} on {where}: TFLM arena used {fields['tflm_used']} bytes, trainer arena "
                  f"{fields['trainer_given']} bytes; largest |TFLM - trainer| = "
                  f"{_bits_to_float(fields['tflm_vs_trainer']):.3g}")
            if not cortex_m:
                continue
            if split is not None:
                for name, cost in parse(execute(split, cortex_m))[1].items():
                    print(f"  split {name:<11} backbone Invoke {cost['instructions_per_backbone_invoke']:>10,} "
                          f"instructions, head TrainStep {cost['instructions_per_train_step']:>10,}")
            baseline = parse(execute(alone, cortex_m))[2]
            for name, cost in costs.items():
                print(f"  {name:<11} {cost['instructions_per_invoke']:>10,} instructions per Invoke   "
                      f"{cost['instructions_per_train_step']:>11,} per TrainStep")
            print(f"  TFLM alone: {int(baseline['instructions_per_invoke']):,} instructions per Invoke")
            with_trainer, without = sizes(shared), sizes(alone)
            print(f"  flash: TFLM alone {without['flash']:,} B, TFLM + trainer {with_trainer['flash']:,} B "
                  f"(+{with_trainer['flash'] - without['flash']:,})")
            print(f"  RAM:   TFLM alone {without['ram']:,} B, TFLM + trainer {with_trainer['ram']:,} B "
                  f"(+{with_trainer['ram'] - without['ram']:,}); both hold the model in RAM "
                  f"({with_trainer['model_in_ram']:,} B of .data)")


def _bits_to_float(text):
    import struct

    return struct.unpack("<f", struct.pack("<I", int(text, 16)))[0]


if __name__ == "__main__":
    main()
