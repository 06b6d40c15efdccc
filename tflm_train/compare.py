"""Train one Keras model with Keras' own fit (the full-backprop reference) and
with the C++ trainer under each sparsity policy, then tabulate and plot
accuracy, loss and effort (multiply-accumulates) per epoch."""

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .converter import convert
from .policies import Full, LastLayers, StaticTopK, TinyProp, TinyPropV2
from .trainer import MicroTrainer

DEFAULT_POLICIES = (Full(), StaticTopK(0.3), TinyProp(), TinyPropV2())


@dataclass
class MethodResult:
    name: str
    accuracy: list = field(default_factory=list)      # test accuracy after each epoch
    loss: list = field(default_factory=list)          # mean training loss of each epoch
    forward_macs: list = field(default_factory=list)  # per epoch
    backward_macs: list = field(default_factory=list)
    skipped: list = field(default_factory=list)       # share of samples skipped per epoch
    step_loss: list = field(default_factory=list)     # mean loss of each batch, in order, all epochs
    seconds: float = 0.0
    model_bytes: bytes = field(default=None, repr=False)  # the trained .tflite (C++ methods)


@dataclass
class CompareResult:
    methods: list
    full_forward_macs: int     # one epoch of full backprop on this data
    full_backward_macs: int

    def effort(self, m):
        """(forward+backward, backward-only) MACs relative to full backprop, over all epochs."""
        epochs = len(m.loss)
        fb = (sum(m.forward_macs) + sum(m.backward_macs)) / (epochs * (self.full_forward_macs + self.full_backward_macs))
        b = sum(m.backward_macs) / (epochs * self.full_backward_macs)
        return fb, b

    def table(self):
        head = f"{'method':<22}{'test acc':>9}{'loss':>9}{'effort f+b':>12}{'effort b':>10}{'skipped':>9}{'wall s':>8}"
        lines = [head, "-" * len(head)]
        for m in self.methods:
            fb, b = self.effort(m)
            skipped = np.mean(m.skipped) if m.skipped else 0.0
            lines.append(f"{m.name:<22}{m.accuracy[-1]:>9.4f}{m.loss[-1]:>9.4f}{fb:>12.3f}{b:>10.3f}"
                         f"{skipped:>9.3f}{m.seconds:>8.1f}")
        return "\n".join(lines)

    def to_json(self):
        return json.dumps({"full_forward_macs": self.full_forward_macs, "full_backward_macs": self.full_backward_macs,
                           "methods": [{k: v for k, v in m.__dict__.items() if k != "model_bytes"}
                                       for m in self.methods]}, indent=1)

    def save_plots(self, out_dir):
        """accuracy.png and loss.png (per epoch; loss also per batch, smoothed), effort.png (bars per epoch)."""
        from .plots import compare_figures, save_figure

        os.makedirs(out_dir, exist_ok=True)
        paths = []
        for name, fig in compare_figures(self).items():
            paths.append(os.path.join(out_dir, f"{name}.png"))
            save_figure(fig, paths[-1])
        return paths


def _full_macs(model_bytes, x, y, samples):
    """MACs of one epoch of full backprop (docs/algorithm.md's accounting). Under Full() every
    sample costs the same, so one step of a throwaway trainer gives them; the reference
    parity tests pin these counts to an independent implementation."""
    step = MicroTrainer(model_bytes, policy=Full(), batch_size=1).train_step(x[:1], y[:1])
    return step.forward_macs * samples, step.backward_macs * samples


def compare(model, x_train, y_train, x_test, y_test, *, loss, optimizer, policies=DEFAULT_POLICIES, epochs=3,
            batch_size=1, seed=0, verbose=1):
    """Keras `fit` (full backprop) against the C++ trainer under each policy.

    Every method starts from the same initial weights and sees the samples in
    the same order; layers the Keras model marks non-trainable stay frozen in all. Returns a CompareResult (`.table()`, `.save_plots(dir)`).
    """
    import keras

    initial = [w.copy() for w in model.get_weights()]
    # The data is checked by the trainer, and every model converted, before Keras
    # runs, so bad data or an unsupported model fails with one clear error, not midway.
    def micro_model(policy):
        return convert(model, loss=loss, optimizer=optimizer, policy=policy, batch_size=batch_size)

    model_files = [micro_model(policies[0])]
    checker = MicroTrainer(model_files[0], batch_size=batch_size)
    checker.check_data(x_train, y_train)
    checker.check_data(x_test, y_test, name="test")
    model_files += [micro_model(policy) for policy in policies[1:]]
    order = [np.random.default_rng(seed + e).permutation(len(x_train)) for e in range(epochs)]
    methods = []

    reference = keras.models.clone_model(model)
    reference.set_weights(initial)
    reference.compile(optimizer=optimizer.to_keras(), loss=loss, metrics=["accuracy"])
    keras_result = MethodResult("keras fit (full)")
    record_batches = _batch_loss_recorder(keras_result.step_loss, len(x_train), batch_size)
    start = time.perf_counter()
    for e in range(epochs):
        h = reference.fit(x_train[order[e]], y_train[order[e]], batch_size=batch_size, epochs=1, shuffle=False,
                          verbose=0, callbacks=[record_batches])
        keras_result.loss.append(float(h.history["loss"][-1]))
        keras_result.accuracy.append(float(reference.evaluate(x_test, y_test, verbose=0)[1]))
        if verbose:
            print(f"keras fit: epoch {e + 1}/{epochs} loss {keras_result.loss[-1]:.4f} "
                  f"test accuracy {keras_result.accuracy[-1]:.4f}")
    keras_result.seconds = time.perf_counter() - start

    full_fwd = full_bwd = None
    for policy, model_bytes in zip(policies, model_files):
        if full_fwd is None:
            full_fwd, full_bwd = _full_macs(model_bytes, x_train, y_train, len(x_train))
            keras_result.forward_macs = [full_fwd] * epochs
            keras_result.backward_macs = [full_bwd] * epochs
            keras_result.skipped = [0.0] * epochs
        trainer = MicroTrainer(model_bytes, batch_size=batch_size)
        result = MethodResult(f"C++ {_describe(policy)}")
        start = time.perf_counter()
        for e in range(epochs):
            h = trainer.fit(x_train[order[e]], y_train[order[e]], batch_size=batch_size, epochs=1, shuffle=False,
                            verbose=0)
            result.loss.append(h.history["loss"][-1])
            result.step_loss.extend(float(v) for v in h.batch_loss)
            result.forward_macs.append(h.history["forward_macs"][-1])
            result.backward_macs.append(h.history["backward_macs"][-1])
            result.skipped.append(h.history["skipped"][-1])
            result.accuracy.append(trainer.evaluate(x_test, y_test, return_dict=True).get("accuracy", float("nan")))
            if verbose:
                print(f"{result.name}: epoch {e + 1}/{epochs} loss {result.loss[-1]:.4f} "
                      f"test accuracy {result.accuracy[-1]:.4f} skipped {result.skipped[-1]:.3f}")
        result.seconds = time.perf_counter() - start
        result.model_bytes = trainer.model_bytes
        methods.append(result)
    return CompareResult([keras_result] + methods, full_fwd, full_bwd)


def _batch_loss_recorder(step_loss, samples, batch_size):
    """A Keras callback appending the loss of each batch of a one-epoch fit to `step_loss`."""
    import keras

    previous = [0.0]  # running mean after the previous batch

    def on_train_batch_end(batch, logs):
        # Keras logs the running mean of the epoch so far, weighted by batch size; a batch's own
        # loss is the difference of consecutive running sums over its size. With equal batches,
        # counting batches from 1: loss_i = i * mean_i - (i - 1) * mean_(i-1).
        before = batch * batch_size
        size = min(batch_size, samples - before)
        mean = float(logs["loss"])
        step_loss.append((mean * (before + size) - previous[0] * before) / size)
        previous[0] = mean

    return keras.callbacks.LambdaCallback(on_train_batch_end=on_train_batch_end)


def _describe(policy):
    if isinstance(policy, StaticTopK):
        return f"StaticTopK({policy.ratio:g})"
    if isinstance(policy, LastLayers):
        return f"LastLayers({policy.n})"
    if policy != type(policy)():
        return repr(policy)
    return f"{policy.name}()"
