"""Runs every libFuzzer harness of micro_kernels/fuzz for a long time and prints, per
harness, the inputs executed, the coverage reached and the findings (crashes,
sanitizer reports, timeouts, out-of-memory). Findings are copied to
--findings-dir; each one fixed becomes a regression input in
micro_kernels/fuzz/regressions/<harness>/.

    python benchmarks/fuzz.py --seconds 600            # each harness 10 minutes
    python benchmarks/fuzz.py --runs 2000000 --jobs 2  # a fixed number of inputs each

Needs clang with libFuzzer (scripts/setup_test_tools.sh installs Debian's clang and
libclang-rt-14-dev). The seed corpus is made by the converter
(micro_kernels/fuzz/make_corpus.py); the grown corpus stays in --work-dir, so a later
run continues from it.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESSES = ("model", "state", "samples", "checkpoint")


def build(build_dir):
    env = dict(os.environ, CC="clang", CXX="clang++")
    subprocess.run(["cmake", "-S", os.path.join(ROOT, "micro_kernels"), "-B", build_dir, "-DMICRO_KERNELS_FUZZ=ON",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2)], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(build_dir, "fuzz")


def seed_corpus(work_dir):
    if all(os.path.isdir(os.path.join(work_dir, "corpus", h)) for h in HARNESSES):
        return
    from tflm_train import quiet_tensorflow

    sys.path.insert(0, os.path.join(ROOT, "micro_kernels", "fuzz"))
    import make_corpus

    with quiet_tensorflow():
        make_corpus.main(os.path.join(work_dir, "corpus"))


def run(harness, binary_dir, work_dir, findings_dir, seconds, runs):
    corpus = os.path.join(work_dir, "corpus", harness)
    artifacts = os.path.join(work_dir, "artifacts", harness) + os.sep
    os.makedirs(artifacts, exist_ok=True)
    regressions = os.path.join(ROOT, "micro_kernels", "fuzz", "regressions", harness)
    cmd = [os.path.join(binary_dir, f"fuzz_{harness}"), corpus, "-max_len=65536", "-timeout=20", "-rss_limit_mb=2048",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}"]
    cmd.append(f"-max_total_time={seconds}" if seconds else f"-runs={runs}")
    if os.path.isdir(regressions):
        cmd.append(regressions)
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stderr
    executed = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    coverage = re.findall(r"cov: (\d+) ft: (\d+)", log)
    findings = sorted(os.listdir(artifacts))
    for name in findings:
        os.makedirs(findings_dir, exist_ok=True)
        shutil.copy(os.path.join(artifacts, name), os.path.join(findings_dir, f"{harness}-{name}"))
    with open(os.path.join(work_dir, f"{harness}.log"), "w") as f:
        f.write(log)
    return dict(harness=harness, executed=int(executed[-1]) if executed else 0,
                edges=int(coverage[-1][0]) if coverage else 0, features=int(coverage[-1][1]) if coverage else 0,
                findings=len(findings), exit=proc.returncode, seconds=time.time() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=0, help="run each harness this long")
    parser.add_argument("--runs", type=int, default=100000, help="or this many inputs each (default 100000)")
    parser.add_argument("--jobs", type=int, default=1, help="harnesses run side by side (default 1)")
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "build", "fuzz-work"))
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build", "fuzz"))
    parser.add_argument("--findings-dir", default=os.path.join(ROOT, "build", "fuzz-findings"))
    args = parser.parse_args()
    if shutil.which("clang++") is None:
        raise SystemExit("clang++ not found: bash scripts/setup_test_tools.sh installs it")
    binary_dir = build(args.build_dir)
    seed_corpus(args.work_dir)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda h: run(h, binary_dir, args.work_dir, args.findings_dir, args.seconds,
                                              args.runs), HARNESSES))
    print(f"\n{'harness':<10}{'inputs':>12}{'edges':>8}{'features':>10}{'findings':>10}{'seconds':>9}")
    for r in results:
        print(f"{r['harness']:<10}{r['executed']:>12,}{r['edges']:>8}{r['features']:>10}{r['findings']:>10}"
              f"{r['seconds']:>9.0f}")
    total = sum(r["executed"] for r in results)
    findings = sum(r["findings"] for r in results)
    print(f"{'total':<10}{total:>12,}{'':>18}{findings:>10}")
    if findings or any(r["exit"] not in (0,) for r in results):
        print(f"findings in {args.findings_dir}; logs in {args.work_dir}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
