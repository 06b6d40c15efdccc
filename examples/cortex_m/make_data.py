"""Generates the Cortex-M example's data into a build directory:

  model.tflite     a trainable MNIST model (tflm_train.convert, SGD 0.05): with
                   --model mlp (default) the 784-32-16-10 MLP, with --model cnn the
                   papers' 5-layer 2-D CNN for 28x28x1 images (see cnn_model), with
                   --model mobile a small MobileNet-style net (see mobile_model)
  model_data.h     `tflm_train.export`'s pair: g_model[] (the same bytes, writable,
  model_data.cpp   16-byte aligned) and the model's arena sizes, shapes and class count
  mnist_data.cc    the first N train and test MNIST images (float32, exact hex literals;
                   784 values per image, which is 28x28x1 NHWC for the CNN), labels, and
                   the arena (largest need over the four policies at batch size 1)
  data.npz         the same slice, for the host comparison (images (N, 784) for the MLP,
                   (N, 28, 28, 1) for the CNN)

The plan keeps the converter's default policy for both models; the firmware overrides
it with each of the four policies, so one model file serves all four runs.

    python examples/cortex_m/make_data.py --out-dir build/cm_data [--model cnn] [--train 64 --test 64]
"""

import argparse
import os

import numpy as np


def policies():
    import tflm_train

    return {"full": tflm_train.Full(), "static0.3": tflm_train.StaticTopK(0.3),
            "tinyprop": tflm_train.TinyProp(), "tinypropv2": tflm_train.TinyPropV2()}


def mlp_model(hidden):
    import keras

    layers = [keras.Input((784,))]
    layers += [keras.layers.Dense(int(w), activation="relu") for w in hidden.split(",") if w]
    layers += [keras.layers.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


def cnn_model(classes=10):
    """The papers' '5-layer DNN' with 2-D convolutions for 28x28x1 images: the same
    architecture as paper_cnn_2d() in tests/cnn_models.py (kept in step by hand)."""
    import keras

    L = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, activation="relu", name="conv2"),
        L.MaxPooling2D(2, name="pool2"),
        L.Conv2D(16, 3, activation="relu", name="conv3"),
        L.Flatten(name="flat"),
        L.Dense(32, activation="relu", name="fc1"),
        L.Dense(classes, activation="softmax", name="fc2"),
    ], name="paper_cnn_2d")


def mobile_model(classes=10):
    """A small MobileNet-style net for 28x28x1 images that uses the rest of the ops the
    trainer trains through: ZeroPadding2D (PAD), a depthwise convolution, a residual Add,
    average pooling and global average pooling (MEAN)."""
    import keras

    L = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = L.ZeroPadding2D(1, name="pad")(inputs)
    x = L.Conv2D(8, 3, strides=2, activation="relu", name="stem")(x)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise")(x)
    y = L.Conv2D(8, 1, name="project")(y)
    x = L.Add(name="residual")([x, y])
    x = L.AveragePooling2D(2, name="pool")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="mobile_block")


def _floats(name, values):
    flat = np.asarray(values, np.float32).ravel()
    rows = [", ".join(float(v).hex() + "f" for v in flat[i:i + 8]) + "," for i in range(0, len(flat), 8)]
    return f"const float {name}[] = {{\n" + "\n".join(rows) + "\n};\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--model", choices=("mlp", "cnn", "mobile"), default="mlp",
                        help="mlp: 784-32-16-10 (default); cnn: the papers' 5-layer 2-D CNN; "
                             "mobile: pad, depthwise, residual add, pooling, global average pooling")
    parser.add_argument("--hidden", default="32,16", help="MLP hidden layer widths (default 32,16)")
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    args = parser.parse_args()
    from tflm_train import quiet_tensorflow

    with quiet_tensorflow(not args.verbose):
        run(args)


def run(args):

    import keras

    import tflm_train
    from tflm_train.datasets import load_mnist
    from tflm_train.export import export

    os.makedirs(args.out_dir, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_mnist()
    shape = (-1,) if args.model == "mlp" else (28, 28, 1)
    x_train, y_train = x_train[:args.train].reshape(args.train, *shape), y_train[:args.train]
    x_test, y_test = x_test[:args.test].reshape(args.test, *shape), y_test[:args.test]

    keras.utils.set_random_seed(0)
    model = {"mlp": lambda: mlp_model(args.hidden), "cnn": cnn_model, "mobile": mobile_model}[args.model]()
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(args.learning_rate))
    model_path = os.path.join(args.out_dir, "model.tflite")
    with open(model_path, "wb") as f:
        f.write(model_bytes)
    export(model_path, os.path.join(args.out_dir, "model_data"), name="g_model")

    arena = max(tflm_train.MicroTrainer(model_bytes, policy=p).arena_report["required_bytes"]
                for p in policies().values())
    arena = (arena + 15) // 16 * 16
    with open(os.path.join(args.out_dir, "mnist_data.cc"), "w") as f:
        f.write(f"// Generated by examples/cortex_m/make_data.py: MNIST slice and arena.\n"
                f"#include \"data.h\"\n\n"
                f"alignas(16) unsigned char g_arena[{arena}];\n"
                f"const unsigned int g_arena_len = {arena};\n"
                f"const unsigned int g_input_len = {x_train[0].size};\n"
                f"const unsigned int g_num_train = {args.train};\n"
                f"const unsigned int g_num_test = {args.test};\n")
        f.write(_floats("g_train_x", x_train) + _floats("g_train_y", y_train))
        f.write(_floats("g_test_x", x_test) + _floats("g_test_y", y_test))
    np.savez(os.path.join(args.out_dir, "data.npz"), x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    print(f"wrote {args.out_dir}: {args.model} model {len(model_bytes)} bytes, arena {arena} bytes, "
          f"{args.train} train + {args.test} test samples")


if __name__ == "__main__":
    main()
