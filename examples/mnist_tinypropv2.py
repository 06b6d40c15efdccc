"""The main job: a Keras model for MNIST becomes a trainable .tflite, trains
through the C++ trainer with TinyPropV2 (and the other policies), and is compared
with Keras' own full-backprop fit. The trained TinyPropV2 file is then run in the
real TFLM runtime.

Models: `mlp` (default), the TinyProp papers' 784-32-16-10; `cnn`, the papers'
"5-layer DNN" with 2-D convolutions (three 3x3 convolutions with max pooling, two
dense layers).

    python examples/mnist_tinypropv2.py [--model mlp|cnn] [--train-samples 10000] [--epochs 3]
"""

import argparse
import os

import numpy as np


def build_model(kind):
    import keras

    layers = keras.layers
    if kind == "mlp":
        return keras.Sequential([
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(32, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--train-samples", type=int, default=10000, help="MNIST training images used (max 50000)")
    parser.add_argument("--test-samples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="SGD peak rate (default 0.05 for mlp, 0.01 for cnn)")
    parser.add_argument("--out-dir", default=None, help="default: out/mnist_<model>_tinypropv2")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    args = parser.parse_args()
    from tflm_train import quiet_tensorflow

    with quiet_tensorflow(not args.verbose):
        run(args)


def run(args):

    import keras
    from tflite_micro.python.tflite_micro import runtime

    import tflm_train
    from tflm_train.compare import compare
    from tflm_train.datasets import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_train, y_train = x_train[:args.train_samples], y_train[:args.train_samples]
    x_test, y_test = x_test[:args.test_samples], y_test[:args.test_samples]

    keras.utils.set_random_seed(0)
    model = build_model(args.model)
    if args.model == "cnn":
        x_train, x_test = x_train[..., None], x_test[..., None]
    out_dir = args.out_dir or f"out/mnist_{args.model}_tinypropv2"
    learning_rate = args.learning_rate or {"mlp": 0.05, "cnn": 0.01}[args.model]
    steps = args.epochs * len(x_train)
    optimizer = tflm_train.SGD(learning_rate, schedule=tflm_train.CosineDecay(steps, alpha=0.1))
    policies = [tflm_train.Full(), tflm_train.StaticTopK(0.3), tflm_train.TinyProp(), tflm_train.TinyPropV2()]
    result = compare(model, x_train, y_train, x_test, y_test, loss="sparse_categorical_crossentropy",
                     optimizer=optimizer, policies=policies, epochs=args.epochs, batch_size=1)
    print("\n" + result.table())

    os.makedirs(out_dir, exist_ok=True)
    plots = result.save_plots(out_dir)
    with open(os.path.join(out_dir, "compare.json"), "w") as f:
        f.write(result.to_json())
    tinypropv2 = result.methods[-1]
    trained_path = os.path.join(out_dir, f"mnist_{args.model}_tinypropv2.tflite")
    with open(trained_path, "wb") as f:
        f.write(tinypropv2.model_bytes)

    # The trained file is an ordinary .tflite: real TFLM runs it with the new weights.
    interpreter = runtime.Interpreter.from_bytes(tinypropv2.model_bytes)
    check = x_test[:200]
    tflm_out = []
    for x in check:
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        tflm_out.append(interpreter.get_output(0)[0])
    tflm_out = np.array(tflm_out)
    ours = tflm_train.MicroTrainer(tinypropv2.model_bytes).predict(check)
    accuracy = float(np.mean(tflm_out.argmax(1) == y_test[:200]))
    print(f"\nTFLM runtime on the trained TinyPropV2 file: max |TFLM - trainer| = "
          f"{np.abs(tflm_out - ours).max():.2e}, accuracy on 200 test images {accuracy:.3f}")
    print(f"wrote {trained_path} and {', '.join(plots)}")


if __name__ == "__main__":
    main()
