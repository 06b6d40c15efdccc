"""Host training throughput: the C++ trainer under each policy against Keras'
own per-sample training (fit with batch_size=1), on the same model and data,
measured side by side in one run.

    python benchmarks/throughput.py [--samples 5000] [--hidden 32 16]

--compare-kernels REF_SITE instead measures `fit` samples/s of the MLP and the
papers' 2-D CNN under each policy with two builds of the package, side by side:
the tflm_train that this Python imports (normally the optimized kernels) and a
second one installed in REF_SITE with the reference kernels, e.g.

    pip install --no-deps --no-build-isolation --target /tmp/ref_site \
        --config-settings=cmake.define.MICRO_KERNELS_REFERENCE_KERNELS=ON .
    python benchmarks/throughput.py --compare-kernels /tmp/ref_site

Each build runs in its own child process (one package name, two builds), on
the same models, data and seeds; each rate is the best of --repeats. With
--rounds N the two builds' children alternate N times and each rate is the best
over all rounds, so a machine whose load changes meanwhile weighs on both.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 16])
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the C++ runs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    parser.add_argument("--compare-kernels", metavar="REF_SITE",
                        help="fit samples/s of this build and of the reference-kernel build in REF_SITE")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --compare-kernels: alternate the two builds' runs this many times")
    parser.add_argument("--cnn-samples", type=int, default=2000, help="samples for the CNN with --compare-kernels")
    parser.add_argument("--fit-rates", action="store_true", help=argparse.SUPPRESS)  # a child's job: JSON rates
    args = parser.parse_args()
    if args.compare_kernels:
        compare_kernels(args)
        return
    from tflm_train import quiet_tensorflow

    with quiet_tensorflow(not args.verbose):
        if args.fit_rates:
            print(json.dumps(fit_rates(args)))
        else:
            run(args)


POLICIES = ("Full", "StaticTopK", "TinyProp", "TinyPropV2")


def build_models(args):
    import keras

    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((784,))] + [keras.layers.Dense(h, activation="relu") for h in args.hidden]
                           + [keras.layers.Dense(10, activation="softmax")])
    L = keras.layers
    cnn = keras.Sequential([  # the papers' 2-D CNN (tests/cnn_models.py, paper_cnn_2d)
        keras.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(16, 3, activation="relu"), L.Flatten(),
        L.Dense(32, activation="relu"), L.Dense(10, activation="softmax"),
    ])
    return mlp, cnn


def fit_rates(args):
    """{model: {policy: fit samples/s}} of the tflm_train this process imports."""
    import tflm_train
    from tflm_train.datasets import load_mnist

    (x, y), _ = load_mnist()
    mlp, cnn = build_models(args)
    sgd = tflm_train.SGD(0.05)
    out = {"core": tflm_train._core.__file__}
    for name, model, n, shape in (("MLP", mlp, args.samples, (784,)), ("CNN", cnn, args.cnn_samples, (28, 28, 1))):
        xs, ys = x[:n].reshape((n,) + shape), y[:n]
        policies = (tflm_train.Full(), tflm_train.StaticTopK(0.3), tflm_train.TinyProp(), tflm_train.TinyPropV2())
        out[name] = {"samples": n}
        for policy in policies:
            model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=sgd, policy=policy)
            best = 0.0
            for _ in range(args.repeats):
                trainer = tflm_train.MicroTrainer(model_bytes)
                start = time.perf_counter()
                trainer.fit(xs, ys, epochs=1, batch_size=1, shuffle=False, verbose=0)
                best = max(best, n / (time.perf_counter() - start))
            out[name][policy.name] = best
    return out


def compare_kernels(args):
    def child(site):
        env = dict(os.environ)
        if site:
            env["PYTHONPATH"] = site + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, os.path.abspath(__file__), "--fit-rates", "--samples", str(args.samples),
               "--cnn-samples", str(args.cnn_samples), "--repeats", str(args.repeats), "--hidden"]
        cmd += [str(h) for h in args.hidden]
        done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def best(a, b):
        if a is None:
            return b
        for name in ("MLP", "CNN"):
            for policy in POLICIES:
                b[name][policy] = max(a[name][policy], b[name][policy])
        return b

    ref = opt = None
    for _ in range(max(1, args.rounds)):
        ref = best(ref, child(os.path.abspath(args.compare_kernels)))
        opt = best(opt, child(None))
    rounds = f" in each of {args.rounds} alternating rounds" if args.rounds > 1 else ""
    print(f"fit samples/s (batch size 1, best of {args.repeats}{rounds}), reference vs optimized kernels")
    print(f"reference: {ref['core']}\noptimized: {opt['core']}\n")
    print(f"{'model':<6}{'policy':<12}{'samples':>8}{'reference':>11}{'optimized':>11}{'speedup':>9}")
    for name in ("MLP", "CNN"):
        for policy in POLICIES:
            r, o = ref[name][policy], opt[name][policy]
            print(f"{name:<6}{policy:<12}{ref[name]['samples']:>8}{r:>11.0f}{o:>11.0f}{o / r:>8.2f}x")


def run(args):

    import keras

    import tflm_train
    from tflm_train.datasets import load_mnist

    (x, y), _ = load_mnist()
    x, y = x[:args.samples].reshape(args.samples, 784), y[:args.samples]
    keras.utils.set_random_seed(0)
    layers = [keras.Input((784,))] + [keras.layers.Dense(h, activation="relu") for h in args.hidden]
    model = keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax")])
    initial = model.get_weights()
    sgd = tflm_train.SGD(0.05)

    rows = []
    reference = keras.models.clone_model(model)
    reference.set_weights(initial)
    reference.compile(optimizer=sgd.to_keras(), loss="sparse_categorical_crossentropy")
    reference.fit(x[:64], y[:64], batch_size=1, epochs=1, verbose=0)  # trace once
    start = time.perf_counter()
    reference.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    keras_rate = args.samples / (time.perf_counter() - start)
    rows.append(("keras fit, batch 1", keras_rate, None))

    for policy in (tflm_train.Full(), tflm_train.StaticTopK(0.3), tflm_train.TinyProp(), tflm_train.TinyPropV2()):
        model.set_weights(initial)
        model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=sgd, policy=policy)
        best = 0.0
        for _ in range(args.repeats):
            trainer = tflm_train.MicroTrainer(model_bytes)
            start = time.perf_counter()
            for i in range(args.samples):
                trainer.train_step(x[i:i + 1], y[i:i + 1])
            best = max(best, args.samples / (time.perf_counter() - start))
        # fit: the same C++, batches fed from one Python loop with no StepResult objects.
        whole = tflm_train.MicroTrainer(model_bytes)
        start = time.perf_counter()
        whole.fit(x, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
        fit_rate = args.samples / (time.perf_counter() - start)
        rows.append((f"C++ {policy.name}", best, fit_rate))

    print(f"MLP 784-{'-'.join(map(str, args.hidden))}-10, {args.samples} MNIST samples, batch size 1\n")
    print(f"{'trainer':<24}{'train_step/s':>14}{'fit samples/s':>15}{'vs keras':>10}")
    for name, rate, fit_rate in rows:
        best = max(rate, fit_rate or 0.0)
        fit_text = f"{fit_rate:>15.0f}" if fit_rate else f"{'':>15}"
        print(f"{name:<24}{rate:>14.0f}{fit_text}{best / keras_rate:>9.1f}x")


if __name__ == "__main__":
    main()
