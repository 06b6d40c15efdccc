#!/usr/bin/env python3
"""Writes the C++ unit tests' fixture models: small Keras models converted with
tflm_train.convert (seeded, so the bytes are the same on every run) as C arrays in
micro_kernels/tests/fixtures/*.h. The C++ tests need no Python; this script and
tests/test_cpp_unit.py (which regenerates into a temporary directory and compares)
are the only Python involved.

    python3 scripts/make_test_fixtures.py [--out DIR]
"""

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "micro_kernels" / "tests" / "fixtures"


def _dense_network(seed):
    """Input(4) -> Dense(3, relu) -> Dense(2, softmax), with non-zero biases."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
    return model


def _cnn(seed):
    """Input(6, 6, 2) -> Conv2D(3, 3x3, same, relu) -> MaxPooling2D(2) ->
    DepthwiseConv2D(2x2, multiplier 2, relu) -> Flatten -> Dense(3, softmax)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(3, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.DepthwiseConv2D(2, depth_multiplier=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
    return model


def _version1_model(model_bytes):
    """The same .tflite with its plan replaced by one in the layout of plan version 1
    (tflm_train 0.1, which repeated the graph as plan ops), as such a file carries it:
    the trainer must refuse it as an old version, not as a corrupt file."""
    import flatbuffers

    from tflm_train.converter import tflite_graph

    graph = tflite_graph.read(model_bytes)
    subgraph = graph.subgraphs[0]
    b = flatbuffers.Builder(512)
    ops = []
    for index, op in enumerate(subgraph.operators):
        name = tflite_graph._op_name(graph, op)
        dense = name == "FULLY_CONNECTED"
        fused = op.builtinOptions.fusedActivationFunction if dense else 0
        label = b.CreateString(f"op{index}")
        b.StartVector(4, 1, 4)
        b.PrependInt32(int(op.inputs[0]))
        inputs = b.EndVector()
        b.StartObject(18)  # v1 Op
        b.PrependUint8Slot(0, 0 if dense else 5, 0)  # OpKind FullyConnected / Softmax
        b.PrependUOffsetTRelativeSlot(1, inputs, 0)
        b.PrependInt32Slot(2, int(op.outputs[0]), -1)
        if dense:
            b.PrependInt32Slot(3, int(op.inputs[1]), -1)
            b.PrependInt32Slot(4, int(op.inputs[2]), -1)
            b.PrependUint8Slot(5, 1 if fused == 1 else 0, 0)
            b.PrependBoolSlot(6, True, False)
        b.PrependUOffsetTRelativeSlot(7, label, 0)
        ops.append(b.EndObject())
    b.StartVector(4, len(ops), 4)
    for op in reversed(ops):
        b.PrependUOffsetTRelative(op)
    ops_vector = b.EndVector()
    b.StartObject(8)  # Optimizer
    b.PrependFloat32Slot(0, 0.1, 0.01)
    optimizer = b.EndObject()
    b.StartObject(10)  # Policy: defaults
    policy = b.EndObject()
    b.StartObject(5)  # MemoryPlan
    b.PrependUint32Slot(0, 1024, 0)
    memory = b.EndObject()
    b.StartObject(9)  # v1 TrainingPlan
    b.PrependUint32Slot(0, 1, 0)  # version
    b.PrependUOffsetTRelativeSlot(1, ops_vector, 0)
    b.PrependInt32Slot(2, int(subgraph.inputs[0]), -1)
    b.PrependInt32Slot(3, int(subgraph.outputs[0]), -1)
    b.PrependUOffsetTRelativeSlot(5, optimizer, 0)
    b.PrependUOffsetTRelativeSlot(6, policy, 0)
    b.PrependUint32Slot(7, 1, 1)
    b.PrependUOffsetTRelativeSlot(8, memory, 0)
    b.Finish(b.EndObject(), file_identifier=b"TTPL")
    tflite_graph.add_metadata(graph, "tflm_train", bytes(b.Output()))
    return tflite_graph.write(graph)


def fixtures():
    """(file stem, C++ name, description, model bytes) for every fixture, in a fixed order."""
    import tflm_train

    plain = tflm_train.convert(_dense_network(1), loss="sparse_categorical_crossentropy",
                               optimizer=tflm_train.SGD(0.1))
    schedule = tflm_train.CosineDecay(100, alpha=0.1, warmup_steps=5, warmup_initial=0.01)
    momentum = tflm_train.convert(
        _dense_network(2), loss="sparse_categorical_crossentropy",
        optimizer=tflm_train.SGD(0.1, momentum=0.9, weight_decay=0.01, schedule=schedule), batch_size=4)
    cnn = tflm_train.convert(_cnn(3), loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.05))
    return [
        ("plain_model", "kPlainModel",
         "Input(4) -> Dense(3, relu) -> Dense(2, softmax); sparse categorical cross-entropy,\n"
         "// SGD(0.1), batch 1, Full policy.", plain),
        ("momentum_model", "kMomentumModel",
         "the same network (seed 2) with SGD(0.1, momentum=0.9, weight_decay=0.01,\n"
         "// CosineDecay(100, alpha=0.1, warmup_steps=5, warmup_initial=0.01)), batch 4.", momentum),
        ("cnn_model", "kCnnModel",
         "Input(6, 6, 2) -> Conv2D(3, 3x3, same, relu) -> MaxPooling2D(2) ->\n"
         "// DepthwiseConv2D(2x2, multiplier 2, relu) -> Flatten -> Dense(3, softmax); sparse\n"
         "// categorical cross-entropy, SGD(0.05), batch 1: CONV_2D, MAX_POOL_2D,\n"
         "// DEPTHWISE_CONV_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX.", cnn),
        ("version1_model", "kVersion1Model",
         "the plain model with its plan in the layout of plan version 1 (tflm_train 0.1).",
         _version1_model(plain)),
    ]


def header_text(stem, name, description, data):
    guard = f"TFLM_TRAIN_TESTS_FIXTURES_{stem.upper()}_H_"
    lines = [
        "// Generated by scripts/make_test_fixtures.py (tflm_train.convert of a seeded Keras model);",
        "// do not edit. tests/test_cpp_unit.py checks that it is current.",
        f"// {description}",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"alignas(16) inline constexpr uint8_t {name}[] = {{",
    ]
    for start in range(0, len(data), 16):
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in data[start:start + 16]) + ",")
    lines += [
        "};",
        f"inline constexpr size_t {name}Size = sizeof({name});  // {len(data)} bytes",
        "",
        f"#endif  // {guard}",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the headers")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as the test suite runs TensorFlow (same bytes either way)
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, name, description, data in fixtures():
        path = args.out / f"{stem}.h"
        path.write_text(header_text(stem, name, description, data))
        print(f"{path}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
