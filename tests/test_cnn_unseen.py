"""CNN support on models and shapes no other test contains, checked against
TensorFlow/Keras and the pip TFLM runtime through the public API only.

1. A seeded random CNN generator (RANDOM_SEEDS, fixed): random 2-D (HxWxC) and 1-D
   (LxC) inputs; stacks of Conv2D/Conv1D (kernel 1-5, rectangular too, strides 1-3,
   SAME/VALID (and causal for Conv1D), dilation 1-2, linear/relu/relu6/tanh/sigmoid,
   with and without bias), DepthwiseConv2D (multiplier 1-3), SeparableConv2D,
   BatchNormalization after a linear weight layer (random moving statistics, center and
   scale on or off, optionally followed by an activation layer), Max/AveragePooling
   (SAME/VALID, pool 2-3, strides), ZeroPadding, GlobalAveragePooling (keepdims on and
   off), Dropout, residual Add blocks and a Flatten + Dense head (softmax with sparse
   cross-entropy, or linear with MSE). Only draws Keras itself rejects are drawn again.
   For every model: it converts; the pip TFLM runtime and MicroTrainer.predict agree
   with Keras; one full-backprop step at batch 1 and 3 matches GradientTape +
   keras.optimizers.SGD (models with batch norm: the ReferenceTrainer with Full(), since
   the micro model trains the folded weights); 10 TinyPropV2 steps agree with the
   ReferenceTrainer on k, skips and MACs (run_parity of test_cnn_training).
2. keras.applications.MobileNetV2 (32x32x3, alpha 0.35, 10 classes), with the last 5
   weight layers trainable and with everything trainable: inference in TFLM and in the
   trainer, TinyPropV2 against the reference, and no backward work in the frozen prefix.
3. Robustness: single-byte corruptions of a small converted CNN (Conv2D, depthwise,
   pooling, Pad, Mean, Add) -- every byte of the training plan with several values, a
   dense sample of the rest -- and hand-edited plans (stride 0, huge dilation, negative
   padding, Add of different sizes, depth multiplier mismatch, pooling with dilation,
   ...). They run in a child process (a crash or hang there fails the test instead of
   killing the run; the child is restarted after a crash so every case is reported).

Tolerances (float32), as in test_cnn_training.py:
- Inference: rtol/atol 1e-5 (the largest fan-in here is a few hundred; float32 sums of
  that length round well below 1e-5 relative to the output scale). MobileNetV2 (52
  weight layers, ~1e-6 per layer accumulated) uses the same bound.
- One step: each weight within 1e-5 of its tensor's scale (max |w|); loss rtol 1e-5. A
  convolution's weight gradient sums over all output positions, so its rounding is
  relative to the tensor.
- Reference parity: k per layer, skip decisions and MACs identical; weights within
  1e-5 of each tensor's scale after every step, except where the reference flags a
  float32 near-tie (then run_parity resynchronises, at most a quarter of the steps).
"""

import json
import os
import signal  # noqa: F401  (used by the child script)
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.reference import ReferenceTrainer, micro_weights

import helpers as H
from test_cnn_training import assert_close_to_scale, keras_unit_weights, run_parity

L = keras.layers
ACTS = ("linear", "relu", "relu6", "tanh", "sigmoid")
INFER_TOL = 1e-5
LOSS_RTOL = 1e-5
LR = 0.05
RANDOM_SEEDS = list(range(30))


# --- the random CNN generator ---------------------------------------------------------------

class _Draw:
    """Random layer choices for one model (dims: 1 or 2 spatial axes)."""

    def __init__(self, rng, dims):
        self.rng = rng
        self.dims = dims
        self.count = 0
        self.has_bn = False

    def name(self, stem):
        self.count += 1
        return f"{stem}{self.count}"

    def choice(self, options, p=None):
        return options[int(self.rng.choice(len(options), p=p))]

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def coin(self, p=0.5):
        return bool(self.rng.random() < p)

    def window(self, lo, hi):
        """A kernel/pool/stride size: an int, or (for 2-D, sometimes) a rectangle."""
        if self.dims == 1:
            return self.int(lo, hi)
        a = self.int(lo, hi)
        return a if self.coin(0.7) else (a, self.int(lo, hi))

    def act(self):
        return self.choice(ACTS)

    # --- layers -----------------------------------------------------------------------
    def conv(self, activation=None, filters=None, padding=None, stride1=False):
        dilation = 2 if self.coin(0.25) else 1
        strides = 1 if stride1 else self.window(1, 3)   # dilation with strides > 1: Keras/TF decide
        if padding is None:
            padding = (self.choice(("same", "valid", "causal"), p=(0.45, 0.45, 0.1)) if self.dims == 1
                       else self.choice(("same", "valid")))
        cls = L.Conv1D if self.dims == 1 else L.Conv2D
        return cls(filters or self.int(1, 6), self.window(1, 5), strides=strides, padding=padding,
                   dilation_rate=dilation, activation=activation or self.act(), use_bias=self.coin(0.7),
                   name=self.name("conv"))

    def depthwise(self, activation=None):
        dilation = 2 if self.coin(0.2) else 1
        return L.DepthwiseConv2D(self.window(1, 5), strides=self.window(1, 3), padding=self.choice(("same", "valid")),
                                 depth_multiplier=self.int(1, 3), dilation_rate=dilation,
                                 activation=activation or self.act(), use_bias=self.coin(0.7), name=self.name("dw"))

    def separable(self, activation=None):
        dilation = 2 if self.coin(0.2) else 1
        return L.SeparableConv2D(self.int(1, 6), self.window(1, 4), strides=self.window(1, 2),
                                 padding=self.choice(("same", "valid")), depth_multiplier=self.int(1, 2),
                                 dilation_rate=dilation, activation=activation or self.act(),
                                 use_bias=self.coin(0.7), name=self.name("sep"))

    def batchnorm(self):
        self.has_bn = True
        return L.BatchNormalization(center=self.coin(0.7), scale=self.coin(0.7), epsilon=self.choice((1e-3, 1e-5)),
                                    name=self.name("bn"))

    def activation_layer(self):
        if self.coin(0.3):
            return L.ReLU(6.0 if self.coin() else None, name=self.name("relu"))
        return L.Activation(self.choice(ACTS[1:]), name=self.name("act"))

    def pool(self):
        max_pool = self.coin()
        if self.dims == 1:
            cls = L.MaxPooling1D if max_pool else L.AveragePooling1D
        else:
            cls = L.MaxPooling2D if max_pool else L.AveragePooling2D
        strides = None if self.coin(0.4) else self.window(1, 3)
        return cls(self.window(2, 3), strides=strides, padding=self.choice(("same", "valid")), name=self.name("pool"))

    def zeropad(self):
        if self.dims == 1:
            return L.ZeroPadding1D((self.int(0, 2), self.int(0, 2)), name=self.name("zp"))
        return L.ZeroPadding2D(((self.int(0, 2), self.int(0, 2)), (self.int(0, 2), self.int(0, 2))),
                               name=self.name("zp"))

    # --- blocks -----------------------------------------------------------------------
    def weight_block(self, x):
        kinds = ["conv", "conv", "bn_conv"] + (["depthwise", "separable", "bn_depthwise", "bn_separable"]
                                               if self.dims == 2 else [])
        return self._block(x, self.choice(kinds))

    def block(self, x):
        kinds = ["conv", "conv", "bn_conv", "pool", "pool", "zeropad", "residual", "residual", "dropout",
                 "activation"]
        if self.dims == 2:
            kinds += ["depthwise", "separable", "bn_depthwise", "bn_separable"]
        return self._block(x, self.choice(kinds))

    def _block(self, x, kind):
        if kind == "conv":
            return self.conv()(x)
        if kind == "depthwise":
            return self.depthwise()(x)
        if kind == "separable":
            return self.separable()(x)
        if kind.startswith("bn_"):
            layer = {"bn_conv": self.conv, "bn_depthwise": self.depthwise, "bn_separable": self.separable}[kind]
            x = self.batchnorm()(layer(activation="linear")(x))
            return self.activation_layer()(x) if self.coin(0.6) else x
        if kind == "pool":
            return self.pool()(x)
        if kind == "zeropad":
            return self.zeropad()(x)
        if kind == "dropout":
            return L.Dropout(0.25, name=self.name("drop"))(x)
        if kind == "activation":
            return self.activation_layer()(x)
        # residual: x + f(x), with f keeping the shape
        channels = int(x.shape[-1])
        h = self.conv(filters=channels, padding="same", stride1=True)(x)
        if self.dims == 2 and self.coin(0.4):
            h = L.DepthwiseConv2D(self.window(1, 3), padding="same", activation=self.act(), use_bias=self.coin(),
                                  name=self.name("dw"))(h)
        if self.coin(0.3):
            conv = (L.Conv1D if self.dims == 1 else L.Conv2D)(channels, 1, use_bias=self.coin(), name=self.name("conv"))
            h = self.batchnorm()(conv(h))
        h = L.Add(name=self.name("add"))([x, h] if self.coin() else [h, x])
        return self.activation_layer()(h) if self.coin(0.5) else h


def build_random_cnn(seed):
    """(model, loss, rejected): a random CNN Keras accepts for `seed`, and the messages
    of the draws Keras rejected before it. The model's weights are Keras' initial ones
    (the caller randomizes biases and batch-norm statistics)."""
    rng = np.random.default_rng(seed)
    rejected = []
    for _ in range(50):
        draw = _Draw(rng, 1 if rng.random() < 0.35 else 2)
        shape = (draw.int(12, 40), draw.int(1, 4)) if draw.dims == 1 else \
            (draw.int(6, 13), draw.int(6, 13), draw.int(1, 3))
        loss = "sparse_categorical_crossentropy" if draw.coin(0.6) else "mse"
        try:
            inp = keras.Input(shape, name="x")
            x = draw.weight_block(inp)        # every model has at least one convolution
            for _ in range(draw.int(1, 4)):
                x = draw.block(x)
                if any(d is not None and d <= 0 for d in x.shape[1:]):
                    raise ValueError(f"Keras made an empty shape {tuple(x.shape)}")
            if draw.coin(0.35):
                gap = L.GlobalAveragePooling1D if draw.dims == 1 else L.GlobalAveragePooling2D
                x = gap(keepdims=draw.coin(), name=draw.name("gap"))(x)
            if len(x.shape) > 2:
                x = L.Flatten(name=draw.name("flat"))(x)
            if draw.coin(0.4):
                if draw.coin(0.3):
                    x = L.Dense(draw.int(3, 12), name=draw.name("fc"))(x)
                    x = draw.activation_layer()(draw.batchnorm()(x))
                else:
                    x = L.Dense(draw.int(3, 12), activation=draw.act(), use_bias=draw.coin(0.8),
                                name=draw.name("fc"))(x)
            out = L.Dense(draw.int(2, 5), activation="softmax" if loss != "mse" else "linear", name="head")(x)
            model = keras.Model(inp, out, name=f"random_cnn_{seed}")
        except ValueError as e:   # Keras refused the draw (e.g. a window larger than its input)
            rejected.append(str(e).strip().splitlines()[0][:160])
            continue
        return model, loss, rejected
    raise AssertionError(f"seed {seed}: Keras rejected 50 draws in a row: {rejected[-3:]}")


def randomize(model, seed):
    """Non-zero biases and non-trivial batch-norm statistics (gamma/beta where present)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0.0, 0.1, c).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0.0, 0.2, c).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype(np.float32))


_OPTION_KEYS = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "depth_multiplier", "activation",
                "use_bias", "pool_size", "center", "scale", "epsilon", "keepdims", "units", "max_value", "rate")


def describe(model):
    """The model, one layer a line (class, options, inputs, output shape), for failure messages."""
    lines = [f"{model.name}: input {tuple(model.inputs[0].shape[1:])}"]
    for layer in model.layers[1:]:
        cfg = layer.get_config()
        opts = ", ".join(f"{k}={cfg[k]}" for k in _OPTION_KEYS if k in cfg)
        sources = [t._keras_history.operation.name for t in keras.tree.flatten(layer._inbound_nodes[0].input_tensors)]
        lines.append(f"  {layer.name}({', '.join(sources)}) = {type(layer).__name__}({opts}) "
                     f"-> {tuple(layer.output.shape[1:])}")
    return "\n".join(lines)


def _data(model, loss, samples, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])
    x = rng.normal(size=(samples,) + shape).astype(np.float32)
    labels = rng.integers(0, classes, samples)
    if loss == "sparse_categorical_crossentropy":
        return x, labels.astype(np.float32)
    return x, rng.normal(0.0, 1.0, (samples, classes)).astype(np.float32)


def _clone(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


@pytest.fixture(scope="module")
def random_models():
    """seed -> (model, loss, converted bytes (Full, batch 1), description); the models keep
    their initial weights."""
    out = {}
    for seed in RANDOM_SEEDS:
        keras.utils.set_random_seed(7000 + seed)
        model, loss, _ = build_random_cnn(5000 + seed)
        randomize(model, 6000 + seed)
        text = describe(model)
        try:
            converted = tflm_train.convert(model, loss=loss, optimizer=tflm_train.SGD(LR))
        except Exception as e:  # reported by test_random_cnn_converts
            converted = e
        out[seed] = (model, loss, converted, text)
    return out


def _converted(random_models, seed):
    model, loss, converted, text = random_models[seed]
    if isinstance(converted, Exception):
        pytest.fail(f"conversion failed ({type(converted).__name__}: {converted}) for\n{text}")
    return model, loss, converted, text


def test_generator_covers_every_feature(random_models):
    """Not vacuous: the fixed seeds draw every layer kind and option the task lists."""
    seen = set()
    for model, loss, _, _ in random_models.values():
        seen.add(loss)
        seen.add("1d" if len(model.inputs[0].shape) == 3 else "2d")
        for layer in model.layers:
            kind = type(layer).__name__
            cfg = layer.get_config()
            seen.add(kind)
            if kind in ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
                seen.add(f"{kind}:{cfg['padding']}")
                seen.add(f"act:{cfg['activation']}")
                seen.add(f"bias:{cfg['use_bias']}")
                if max(cfg["strides"]) > 1:
                    seen.add("strided")
                if max(cfg["dilation_rate"]) > 1:
                    seen.add("dilated")
                if max(cfg["kernel_size"]) == 5:
                    seen.add("kernel5")
            if kind == "DepthwiseConv2D":
                seen.add(f"multiplier{cfg['depth_multiplier']}")
            if kind.startswith(("MaxPooling", "AveragePooling")):
                seen.add(f"pool:{cfg['padding']}")
            if kind.startswith("GlobalAveragePooling"):
                seen.add(f"keepdims:{cfg['keepdims']}")
            if kind == "BatchNormalization":
                seen.add(f"bn_center:{cfg['center']}")
                seen.add(f"bn_scale:{cfg['scale']}")
    want = {"1d", "2d", "sparse_categorical_crossentropy", "mse", "Conv1D", "Conv2D", "DepthwiseConv2D",
            "SeparableConv2D", "BatchNormalization", "MaxPooling2D", "AveragePooling2D", "MaxPooling1D",
            "AveragePooling1D", "ZeroPadding2D", "ZeroPadding1D", "GlobalAveragePooling2D", "GlobalAveragePooling1D",
            "Dropout", "Add", "Flatten", "Conv2D:same", "Conv2D:valid", "Conv1D:same", "Conv1D:valid",
            "Conv1D:causal", "DepthwiseConv2D:same", "DepthwiseConv2D:valid", "strided", "dilated", "kernel5",
            "multiplier1", "multiplier2", "multiplier3", "pool:same", "pool:valid", "keepdims:True", "keepdims:False",
            "bn_center:False", "bn_scale:False", "bn_center:True", "bn_scale:True", "bias:True", "bias:False"} | \
        {f"act:{a}" for a in ACTS}
    assert not want - seen, f"the seeds never draw {sorted(want - seen)}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_cnn_converts_and_infers_like_keras(random_models, seed):
    model, loss, converted, text = _converted(random_models, seed)
    x, _ = _data(model, loss, 4, seed=1)
    want = model.predict(x, verbose=0)
    got_tflm = H.tflm_predict(converted, x)
    np.testing.assert_allclose(got_tflm, want, rtol=INFER_TOL, atol=INFER_TOL, err_msg=f"TFLM vs Keras\n{text}")
    got = tflm_train.MicroTrainer(converted).predict(x)
    np.testing.assert_allclose(got, want, rtol=INFER_TOL, atol=INFER_TOL, err_msg=f"MicroTrainer vs Keras\n{text}")


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_cnn_full_step_matches_tensorflow(random_models, seed, batch_size):
    model, loss, converted, text = _converted(random_models, seed)
    sgd = tflm_train.SGD(LR)
    x, y = _data(model, loss, batch_size, seed=2)
    trainer = tflm_train.MicroTrainer(converted, batch_size=batch_size)
    result = trainer.train_step(x, y)
    assert result.trained == batch_size and not result.skipped, text
    clone = _clone(model)
    folded = any(isinstance(layer, L.BatchNormalization) for layer in model.layers)
    if folded:   # the micro model trains the folded weights: compare with the reference
        ref = ReferenceTrainer(clone, loss=loss, optimizer=sgd, policy=tflm_train.Full())
        want_loss = ref.train_step(x, y).loss
        got_w, want_w = micro_weights(trainer.model_bytes), ref.get_weights(layout="micro")
    else:
        want_loss = H.KerasReference(clone, sgd, loss, training=False).step(x, y)
        got_w, want_w = H.weights_from_bytes(trainer.model_bytes), keras_unit_weights(clone)
    assert result.loss == pytest.approx(want_loss, rel=LOSS_RTOL, abs=1e-7), text
    assert_close_to_scale(got_w, want_w, context=f"batch {batch_size}\n{text}\n")


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_cnn_tinypropv2_matches_reference(random_models, seed):
    model, loss, converted, text = _converted(random_models, seed)
    policy = tflm_train.TinyPropV2()
    micro = tflm_train.MicroTrainer(converted, policy=policy)
    ref = ReferenceTrainer(_clone(model), loss=loss, optimizer=tflm_train.SGD(LR), policy=policy)
    x, y = _data(model, loss, 10, seed=3)
    try:
        run_parity(micro, ref, x, y, steps=10)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{text}") from None
    assert micro.counters["samples"] == ref.counters["samples"] == 10
    assert micro.counters["forward_macs"] == ref.counters["forward_macs"]
