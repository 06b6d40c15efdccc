"""Chooses TinyProp's and TinyPropV2's defaults from validation data (docs/algorithm.md,
"Defaults from evidence").

On every task of benchmarks/paper_table.py (four data sets, scratch and fine-tuning;
its validation splits only, never the test sets), Full trains at each of the task's
learning rates and keeps the best; then every configuration of the grid below trains
at that rate. Per configuration the script prints, over the tasks, the mean and the
worst validation-accuracy loss against Full (points) and the mean backward effort
(backward MACs over Full's), and it names the default rule's choice: the cheapest
configuration whose mean loss is at most --max-loss points.

    python benchmarks/policy_defaults.py [--quick] [--grid coarse|refine] [--datasets mnist,watch] [--max-loss 1.0]

Needs `bash scripts/setup_benchmarks.sh`. Run time on the 2-core development machine:
--quick under a minute; the coarse grid at full sizes 537 s, the refined one about as
long (the 2-D CNN's tasks dominate).
"""

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import paper_table as P  # noqa: E402
import tflm_train  # noqa: E402
from tflm_train import datasets  # noqa: E402

# TinyProp's ratio range and damping, the paper's (0.1, 0.9, 0.5) among them, and
# TinyPropV2's gate threshold on top (tau 0.5 is the paper's; lower lets more samples train).
# "coarse" spans the space; "refine" looks around the coarse run's best corner (larger
# s_min and zeta, lower tau), with the paper's setting again for reference.
PAPER = dict(s_min=0.1, s_max=0.9, zeta=0.5)
GRIDS = {
    "coarse": ([dict(s_min=a, s_max=b, zeta=z) for a, b, z in itertools.product((0.1, 0.2), (0.9, 1.0), (0.5, 0.8))],
               [dict(s_min=a, s_max=b, zeta=z, tau=t)
                for a, b, z, t in itertools.product((0.1, 0.2), (0.9, 1.0), (0.5, 0.8), (0.3, 0.5))]),
    "refine": ([PAPER] + [dict(s_min=a, s_max=1.0, zeta=z) for a, z in itertools.product((0.2, 0.3), (0.8, 0.9))],
               [dict(PAPER, tau=0.5)] + [dict(s_min=a, s_max=1.0, zeta=z, tau=t)
                                         for a, z, t in itertools.product((0.2, 0.3), (0.8, 0.9), (0.1, 0.2, 0.3))]),
}
QUICK_TINYPROP_GRID = [dict(s_min=0.1, s_max=0.9, zeta=0.5), dict(s_min=0.2, s_max=1.0, zeta=0.8)]
QUICK_TINYPROPV2_GRID = [dict(c, tau=t) for c in QUICK_TINYPROP_GRID for t in (0.3, 0.5)]


def label(cls, config):
    return f"{cls.__name__}(" + ", ".join(f"{k}={v:g}" for k, v in config.items()) + ")"


def sweep_task(task, grids, quick, log):
    """{label: (accuracy loss against Full, backward effort)} on the task's validation split."""
    models = P.Models(task)
    rates = (P.QUICK_LEARNING_RATES if quick else P.LEARNING_RATES)[task.setting]
    cost = P.full_cost(models.converted(0, rates[0]), *task.train)
    full = {lr: P.train_once(models.converted(0, lr), tflm_train.Full(), 0, task.train, task.val, task.epochs, cost)
            for lr in rates}
    lr = max(full, key=lambda r: full[r].accuracy)
    log(f"  {task.dataset}/{task.setting}: Full at lr={lr:g}, validation accuracy {full[lr].accuracy:.4f}")
    out = {}
    for cls, grid in grids:
        for config in grid:
            run = P.train_once(models.converted(0, lr), cls(**config), 0, task.train, task.val, task.epochs, cost)
            out[label(cls, config)] = (100.0 * (full[lr].accuracy - run.accuracy), run.backward_effort)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(datasets.AVAILABLE))
    parser.add_argument("--settings", default="scratch,finetune")
    parser.add_argument("--quick", action="store_true", help="paper_table's --quick sizes and a 2-point grid")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="coarse",
                        help="coarse (default): the whole space; refine: around the coarse run's best corner")
    parser.add_argument("--max-loss", type=float, default=1.0,
                        help="mean validation points a default may lose against Full (default 1.0)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = P.QUICK if args.quick else P.FULL
    tinyprop_grid, tinypropv2_grid = GRIDS[args.grid]
    grids = [(tflm_train.TinyProp, QUICK_TINYPROP_GRID if args.quick else tinyprop_grid),
             (tflm_train.TinyPropV2, QUICK_TINYPROPV2_GRID if args.quick else tinypropv2_grid)]
    settings = [s.strip() for s in args.settings.split(",")]
    results = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        for task in P.make_tasks(name, sizes):
            if task.setting in settings:
                task.pretrain_epochs = sizes.pretrain_epochs
                results.append(sweep_task(task, grids, args.quick, lambda t: print(t, flush=True)))
    print(f"\n{'configuration':<62} {'mean loss':>9} {'worst':>7} {'effort':>8}")
    summary = {}
    for key in results[0]:
        losses = [r[key][0] for r in results]
        summary[key] = (float(np.mean(losses)), float(np.max(losses)), float(np.mean([r[key][1] for r in results])))
        print(f"{key:<62} {summary[key][0]:9.2f} {summary[key][1]:7.2f} {summary[key][2]:8.4f}")
    for cls, _ in grids:
        ok = {k: v for k, v in summary.items() if k.startswith(cls.__name__ + "(") and v[0] <= args.max_loss}
        if ok:
            choice = min(ok, key=lambda k: ok[k][2])
            print(f"{cls.__name__}: cheapest within {args.max_loss:g} points on average: {choice}")
        else:
            print(f"{cls.__name__}: no configuration within {args.max_loss:g} points on average")
    print(f"{len(results)} task(s); took {time.perf_counter() - start:.0f} s")
    return summary


if __name__ == "__main__":
    main()
