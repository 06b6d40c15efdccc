"""Host training throughput: the C++ trainer under each policy against Keras'
own per-sample training (fit with batch_size=1), on the same model and data,
measured side by side in one run.

    python benchmarks/throughput.py [--samples 5000] [--hidden 32 16]
"""

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 16])
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the C++ runs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    args = parser.parse_args()
    from tflm_train import quiet_tensorflow

    with quiet_tensorflow(not args.verbose):
        run(args)


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
