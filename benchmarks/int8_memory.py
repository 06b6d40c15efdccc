"""Flash and RAM of an int8 backbone against the float model: for the papers' 2-D CNN,
the 1-D CNN and a MobileNetV2-style net (random weights; sizes do not depend on them),
each converted with `convert` (float32) and with `convert(..., quantize="int8")`
training the same last layers, prints the .tflite bytes, the trainer's arena and its
parts, and the split files' bytes. One run, side by side.

    python benchmarks/int8_memory.py [--train-last 2]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-last", type=int, default=2, help="weight layers that train (default 2)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    args = parser.parse_args()
    from tflm_train import quiet_tensorflow

    with quiet_tensorflow(not args.verbose):
        run(args)


def run(args):
    import cnn_models
    import tflm_train

    models = {"2-D CNN (28x28x1)": cnn_models.paper_cnn_2d, "1-D CNN (128x6)": cnn_models.paper_cnn_1d,
              "MobileNetV2-style (16x16x3)": cnn_models.mobilenet_v2_style}
    print(f"{'model':<29}{'format':<16}{'file B':>9}{'arena B':>9}{'activ.':>9}{'bookk.':>8}"
          f"{'backbone B':>12}{'head B':>9}")
    for name, build in models.items():
        model = build()
        cnn_models.randomize(model, 0)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        x = np.random.default_rng(0).random((100,) + shape, dtype=np.float32)
        options = dict(loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.05),
                       trainable=args.train_last)
        for label, extra in (("float32", {}), ("int8 backbone", {"quantize": "int8", "representative_data": x})):
            data = tflm_train.convert(model, **options, **extra)
            backbone, head = tflm_train.convert(model, split=True, **options, **extra)
            r = tflm_train.MicroTrainer(data).arena_report
            print(f"{name:<29}{label:<16}{len(data):>9,}{r.required_bytes:>9,}{r.activation_bytes:>9,}"
                  f"{r.bookkeeping_bytes:>8,}{len(backbone):>12,}{len(head):>9,}")


if __name__ == "__main__":
    main()
