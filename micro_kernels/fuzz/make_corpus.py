"""Seed corpora for the fuzz harnesses, made by the converter (nothing committed but
the findings): models of every supported kind (dense, conv, depthwise, separable,
residual, pooling, padding, a split bias), each policy, momentum and batch > 1, for
fuzz_model; states of the harness's fixture models for fuzz_state; samples for
fuzz_samples; flash images with checkpoints of those fixtures for fuzz_checkpoint.

    python micro_kernels/fuzz/make_corpus.py OUT_DIR

writes OUT_DIR/{model,state,samples,checkpoint}/ (TensorFlow's conversion is deterministic, so
the corpus is the same on every run).
"""

import os
import sys

import numpy as np

MODELS = {
    "dense": lambda L: [L.Input((6,)), L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")],
    "conv_pool": lambda L: [L.Input((8, 8, 2)), L.ZeroPadding2D(((1, 0), (0, 1))), L.Conv2D(4, 3, activation="relu"),
                            L.MaxPooling2D(2), L.Flatten(), L.Dense(3, activation="softmax")],
    "depthwise_mean": lambda L: [L.Input((7, 7, 3)), L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
                                 L.AveragePooling2D(2, padding="same"), L.SeparableConv2D(4, 3),
                                 L.GlobalAveragePooling2D(), L.Dense(2, activation="sigmoid")],
    "conv1d_one_filter": lambda L: [L.Input((12, 2)), L.Conv1D(1, 3), L.BatchNormalization(), L.Flatten(),
                                    L.Dense(3, activation="softmax")],
}


def _residual(keras):
    L = keras.layers
    x = keras.Input((6, 6, 4))
    h = L.Conv2D(4, 1, activation="relu6")(x)
    h = L.DepthwiseConv2D(3, padding="same")(h)
    h = L.Add()([x, h])
    return keras.Model(x, L.Dense(2)(L.Flatten()(h)))


def main(out_dir):
    import keras

    import tflm_train

    for sub in ("model", "state", "samples", "checkpoint"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    losses = {"dense": "sparse_categorical_crossentropy", "conv_pool": "sparse_categorical_crossentropy",
              "depthwise_mean": "binary_crossentropy", "conv1d_one_filter": "categorical_crossentropy",
              "residual": "mse"}
    policies = [tflm_train.Full(), tflm_train.StaticTopK(0.3), tflm_train.TinyProp(), tflm_train.TinyPropV2(tau=0.3)]
    for i, name in enumerate(losses):
        keras.utils.set_random_seed(i)
        model = _residual(keras) if name == "residual" else keras.Sequential(MODELS[name](keras.layers))
        for j, policy in enumerate(policies):
            sgd = tflm_train.SGD(0.05, momentum=0.9 if j % 2 else 0.0)
            data = tflm_train.convert(model, loss=losses[name], optimizer=sgd, policy=policy, batch_size=1 + j % 3)
            with open(os.path.join(out_dir, "model", f"{name}_{policy.name}.tflite"), "wb") as f:
                f.write(data)
    # States: the first byte picks the harness's fixture (plain, momentum, cnn); a
    # trainer over the same fixture makes a real state to start from.
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    for k, name in enumerate(("plain", "momentum", "cnn")):
        text = open(os.path.join(fixtures, f"{name}_model.h")).read()
        body = text[text.index("{") + 1:text.index("};")]
        data = bytes(int(v, 16) for v in body.replace(",", " ").split())
        trainer = tflm_train.MicroTrainer(data)
        shape = (4,) + tuple(trainer.info.input_shape[1:])
        x = np.random.default_rng(k).normal(size=shape).astype(np.float32)
        trainer.train_step(x[:1], np.array([1]))
        with open(os.path.join(out_dir, "state", f"{name}.bin"), "wb") as f:
            f.write(bytes([k]) + trainer.get_state())
        # Checkpoint images: [fixture byte, log2 page | log2 program << 4] then the region,
        # with one checkpoint, two, and none (erased).
        image = os.path.join(out_dir, "checkpoint", f"{name}.img")
        for saves, page, program in ((1, 256, 4), (2, 64, 1), (2, 1024, 16)):
            if os.path.exists(image):
                os.remove(image)
            for _ in range(saves):
                trainer.train_step(x[:1], np.array([1]))
                trainer.save_checkpoint(image, page_size=page, program_size=program)
            geometry = (page.bit_length() - 1) | (program.bit_length() - 1) << 4
            with open(image, "rb") as f:
                region = f.read()
            with open(os.path.join(out_dir, "checkpoint", f"{name}_{saves}_{page}.bin"), "wb") as f:
                f.write(bytes([k, geometry]) + region)
        os.remove(image)
        with open(os.path.join(out_dir, "checkpoint", f"{name}_erased.bin"), "wb") as f:
            f.write(bytes([k, 8 | 2 << 4]) + b"\xff" * trainer.checkpoint_storage_bytes(256))
        # Samples: [model/policy byte, batch byte] then inputs and a label as floats.
        for policy in range(4):
            values = np.concatenate([x[0].ravel(), np.array([1.0], np.float32)]).astype(np.float32)
            with open(os.path.join(out_dir, "samples", f"{name}_{policy}.bin"), "wb") as f:
                f.write(bytes([k + 3 * policy, 0]) + values.tobytes())


if __name__ == "__main__":
    main(sys.argv[1])
