"""MicroTrainer: the compiled C++ trainer (micro_kernels) driven from Python
with Keras' fit/evaluate/predict."""

import os
from dataclasses import dataclass

import numpy as np

from . import _core
from .callbacks import Callback, History, ProgressBar
from .converter.plan_reader import read_model_info
from .errors import ArenaTooSmallError
from .policies import Policy, policy_from_dict

_CLASSIFYING = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")


@dataclass
class StepResult:
    """What one train_step did. Per-layer numbers are in forward order of the
    trainable layers; batch numbers are totals over the batch's samples."""

    loss: float                 # mean loss of the batch (the sample's at batch size 1)
    skipped: bool               # no sample trained (TinyPropV2 rejected them all)
    k: list                     # kept outputs per trainable layer, summed over the batch
    forward_macs: int
    backward_macs: int
    selection_ops: int
    trained: int                # samples that got a backward pass
    samples: int
    learning_rate: float
    correct: float
    sample_loss: np.ndarray     # per sample
    sample_skipped: np.ndarray
    sample_k: np.ndarray        # (samples, layers)


def _overrides(callback, hook):
    """True when a callback (by subclass or LambdaCallback) defines `hook`."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)


def _as_float_array(name, values):
    array = np.asarray(values)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, np.float32)


class MicroTrainer:
    """Trains a trainable .tflite with the C++ trainer, in place in its bytes.

    Args:
      model_bytes: a .tflite from `tflm_train.convert` (bytes or a path-like to one).
      arena_size: bytes of arena to give the trainer; None measures what it needs.
      policy: override the plan's sparsity policy (Full, StaticTopK, TinyProp, TinyPropV2).
      batch_size: most samples per update to plan for (default: the plan's).
      seed: seeds the shuffling in `fit`.
    """

    def __init__(self, model_bytes, arena_size=None, *, policy=None, batch_size=None, seed=0):
        if isinstance(model_bytes, (str, os.PathLike)):
            with open(model_bytes, "rb") as f:
                model_bytes = f.read()
        elif not isinstance(model_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f"model_bytes must be bytes or a path to a .tflite, got {type(model_bytes).__name__}")
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError("policy must be Full(), StaticTopK(...), TinyProp(...) or TinyPropV2(...)")
        if arena_size is not None and (int(arena_size) != arena_size or arena_size <= 0):
            raise ValueError(f"arena_size must be a positive integer, got {arena_size!r}")
        self._arena_size = arena_size
        self._policy_override = policy
        # The C++ side verifies the bytes before Python reads anything from them.
        self._core = self._make_core(bytes(model_bytes), batch_size or 0)
        self.info = read_model_info(self._core.model_bytes())
        self._rng = np.random.default_rng(seed)
        self.stop_training = False

    def _make_core(self, model_bytes, batch_size):
        policy = None if self._policy_override is None else self._policy_override.to_dict()
        return _core.Trainer(model_bytes, self._arena_size or 0, batch_size, policy)

    # --- properties -----------------------------------------------------------------
    @property
    def model_bytes(self):
        """The .tflite with the current (trained) weights."""
        return self._core.model_bytes()

    @property
    def policy(self):
        return policy_from_dict(self._core.policy)

    @property
    def batch_size(self):
        return self._core.batch_size

    @property
    def loss(self):
        return self.info.loss

    @property
    def counters(self):
        """Cumulative steps, samples, trained/skipped samples and MACs."""
        return self._core.counters

    @property
    def arena_report(self):
        """Arena bytes in use, split into activations, gradients, optimizer, scratch."""
        return self._core.arena_report

    @property
    def learning_rate(self):
        """The rate the next step will use."""
        return self._core.learning_rate

    @property
    def ymax(self):
        """TinyProp's running maximum error per trainable layer."""
        return list(self._core.ymax)

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.model_bytes)

    def get_state(self):
        """Trainer state beyond the weights (step counter, counters, Ymax, momentum)."""
        return self._core.save_state()

    def set_state(self, state):
        self._core.load_state(bytes(state))

    def reset_policy_state(self):
        """Forgets TinyProp's running maxima."""
        self._core.reset_policy_state()

    # --- data ---------------------------------------------------------------------------
    def _x(self, x):
        x = _as_float_array("x", x)
        want = tuple(self.info.input_shape[1:])
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
            raise ValueError(f"x has shape {x.shape}; the model takes (samples, {', '.join(map(str, want))})")
        return x.reshape(len(x), -1)

    def _y(self, y, samples):
        y = _as_float_array("y", y)
        if self.info.loss == "sparse_categorical_crossentropy":
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(f"y has shape {y.shape}; sparse labels are (samples,) class indices")
        else:
            want = tuple(self.info.output_shape[1:])
            if y.ndim != len(want) + 1 or tuple(y.shape[1:]) != want:
                raise ValueError(f"y has shape {y.shape}; this loss takes (samples, {', '.join(map(str, want))})")
        if len(y) != samples:
            raise ValueError(f"x has {samples} samples but y has {len(y)}")
        return y.reshape(len(y), -1)

    def _ensure_batch(self, batch_size):
        """Rebuilds the C++ trainer for a larger batch, carrying weights and state over."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size <= self._core.batch_size:
            return
        state, weights = self._core.save_state(), self._core.model_bytes()
        try:
            core = self._make_core(weights, int(batch_size))
        except ArenaTooSmallError as e:
            raise ArenaTooSmallError(f"batch_size={batch_size} needs a larger arena: {e}", e.status,
                                     e.required_bytes) from None
        core.load_state(state)
        self._core = core

    # --- Keras-style API ----------------------------------------------------------------
    def train_step(self, x, y):
        """One update from the batch (x, y); returns a StepResult."""
        x = self._x(x)
        y = self._y(y, len(x))
        self._ensure_batch(len(x))
        r = self._core.train_step(x, y)
        return StepResult(loss=float(r["loss"]), skipped=not r["updated"], k=[int(v) for v in r["sample_k"].sum(0)],
                          forward_macs=int(r["forward_macs"]), backward_macs=int(r["backward_macs"]),
                          selection_ops=int(r["selection_ops"]), trained=int(r["trained"]),
                          samples=int(r["samples"]), learning_rate=float(r["learning_rate"]),
                          correct=float(r["correct"]), sample_loss=r["sample_loss"],
                          sample_skipped=r["sample_skipped"], sample_k=r["sample_k"])

    def fit(self, x, y, epochs=1, batch_size=None, validation_data=None, callbacks=None, verbose="auto",
            shuffle=True, initial_epoch=0):
        """Trains for `epochs` passes over (x, y) and returns a History.

        Logs per epoch: loss (mean over samples, before each update), accuracy (for
        classification losses), skipped (share of samples TinyPropV2 skipped),
        forward_macs and backward_macs, and val_loss/val_accuracy with validation_data.
        """
        x = self._x(x)
        y = self._y(y, len(x))
        batch_size = int(batch_size or self._core.batch_size)
        self._ensure_batch(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        history = History()
        callbacks = [history] + list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be tflm_train.callbacks.Callback, got {type(cb).__name__}")
            cb.set_trainer(self)
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin()
        n = len(x)
        batches = (n + batch_size - 1) // batch_size
        # Batches go to C++ in chunks unless a callback hooks every batch, which then
        # runs between batches exactly as in Keras.
        per_batch_hooks = any(_overrides(cb, "on_train_batch_begin") or _overrides(cb, "on_train_batch_end")
                              for cb in callbacks)
        chunk = 1 if per_batch_hooks else max(1, 512 // batch_size)
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = ProgressBar(batches) if verbose == 1 else None
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            loss_sum = correct = skipped = fwd = bwd = 0.0
            seen = 0
            for first in range(0, batches, chunk):
                last = min(first + chunk, batches)
                index = order[first * batch_size:last * batch_size]
                if per_batch_hooks:
                    for cb in callbacks:
                        cb.on_train_batch_begin(first)
                r = self._core.train_steps(x[index], y[index], batch_size)
                sizes = np.minimum(batch_size, n - np.arange(first, last) * batch_size)
                if per_batch_hooks:  # running logs after every batch
                    for i, b in enumerate(range(first, last)):
                        seen += int(sizes[i])
                        loss_sum += float(r["loss"][i]) * sizes[i]
                        correct += float(r["correct"][i])
                        batch_logs = self._running_logs(loss_sum, correct, seen)
                        for cb in callbacks:
                            cb.on_train_batch_end(b, batch_logs)
                else:
                    seen += int(sizes.sum())
                    loss_sum += float(np.dot(r["loss"].astype(np.float64), sizes))
                    correct += float(r["correct"].sum(dtype=np.float64))
                    batch_logs = self._running_logs(loss_sum, correct, seen)
                skipped += int(r["skipped"].sum())
                fwd += int(r["forward_macs"].sum())
                bwd += int(r["backward_macs"].sum())
                if bar:
                    bar.update(last, batch_logs)
                if self.stop_training:
                    break
            logs = dict(batch_logs, skipped=skipped / seen, forward_macs=int(fwd), backward_macs=int(bwd))
            if validation_data is not None:
                val = self.evaluate(*validation_data, return_dict=True)
                logs.update({f"val_{k}": v for k, v in val.items()})
            if bar:
                bar.update(batches, {k: v for k, v in logs.items() if "macs" not in k}, final=True)
            elif verbose == 2:
                print(" - ".join(f"{k}: {v:.4g}" for k, v in logs.items() if "macs" not in k))
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _running_logs(self, loss_sum, correct, seen):
        logs = {"loss": loss_sum / seen}
        if self.info.loss in _CLASSIFYING:
            logs["accuracy"] = correct / seen
        return logs

    def evaluate(self, x, y, batch_size=None, verbose=0, return_dict=False):
        """Mean loss (and accuracy for classification losses), as Keras' evaluate."""
        x = self._x(x)
        y = self._y(y, len(x))
        losses, correct = self._core.evaluate(x, y)
        result = {"loss": float(np.mean(losses, dtype=np.float64))}
        if self.info.loss in _CLASSIFYING:
            result["accuracy"] = float(np.mean(correct, dtype=np.float64))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else list(result.values())

    def predict(self, x, batch_size=None, verbose=0):
        """Model outputs for x, shaped (samples, *output_shape)."""
        x = self._x(x)
        out = self._core.predict(x)
        return out.reshape((len(x),) + tuple(self.info.output_shape[1:]))
