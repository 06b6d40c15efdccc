"""MicroTrainer: the compiled C++ trainer (micro_kernels) driven from Python
with Keras' fit/evaluate/predict."""

import os
import secrets
import warnings
from dataclasses import dataclass

import numpy as np

from . import _core
from .callbacks import Callback, History, ProgressBar
from .converter.model_info import read_model_info
from .errors import ArenaTooSmallError, InvalidArgumentError, InvalidDtypeError, TrainerError
from .policies import POLICY_TYPES, Policy, policy_from_dict

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


# Batch hooks, with the aliases Keras' base class forwards them to.
_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


def _hooks_every_batch(callback):
    """Whether fit must stop after every batch for this callback: it defines a batch
    hook of its own (by subclass or as a LambdaCallback's attribute) rather than
    inheriting the no-op of its base class (tflm_train's or Keras' Callback)."""
    base = next((c for c in reversed(type(callback).__mro__) if c.__name__ == "Callback"), Callback)
    for hook in _BATCH_HOOKS:
        method = getattr(callback, hook, None)
        if method is not None and getattr(method, "__func__", method) is not getattr(base, hook, None):
            return True
    return False


def _check_callbacks(callbacks, trainer):
    for cb in callbacks:
        if not (isinstance(cb, Callback) or callable(getattr(cb, "set_model", None))):
            raise InvalidDtypeError(f"callbacks must be tflm_train or Keras callbacks (objects with set_model "
                                    f"and on_* hooks), got {type(cb).__name__}")
        # Keras' monitoring callbacks decide mode="auto" from a compiled Keras model's
        # metrics; ask now, so the answer comes before the first update, not after an epoch.
        if getattr(cb, "mode", None) == "auto" and getattr(cb, "monitor_op", 0) is None \
                and hasattr(cb, "_set_monitor_op"):
            cb.set_model(trainer)
            try:
                cb._set_monitor_op()
            except ValueError:
                raise InvalidArgumentError(
                    f"Keras' {type(cb).__name__}(monitor='{cb.monitor}') cannot tell from a MicroTrainer whether "
                    "the monitor should go up or down: pass mode='max' or mode='min', or use "
                    "tflm_train.EarlyStopping, which reads it from the name") from None


def _call(callbacks, hook, *args):
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if method is not None:
            method(*args)


def epoch_order(seed, epoch, n):
    """The sample order fit uses for `epoch` (counted over the trainer's life, so a
    resumed trainer continues the same sequence)."""
    return np.random.default_rng((seed, epoch)).permutation(n)


def _check_byte_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 < value < 2 ** 32:
        raise InvalidArgumentError(f"{name} must be a whole number of bytes from 1 to 2**32 - 1, got {value!r}")


def _check_flash_geometry(page_size, program_size):
    _check_byte_count("page_size", page_size)
    _check_byte_count("program_size", program_size)


def _as_float_array(name, values):
    array = np.asarray(values)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidDtypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, np.float32)


class MicroTrainer:
    """Trains a trainable .tflite with the C++ trainer, in place in its bytes.

    Args:
      model_bytes: a .tflite from `tflm_train.convert` (bytes or a path-like to one).
      arena_size: bytes of arena to give the trainer; None measures what it needs.
      policy: override the plan's policy (Full, StaticTopK, TinyProp, TinyPropV2, or a baseline:
        LastLayers, BiasOnly, SparseUpdate, TinyTrain).
      batch_size: most samples per update to plan for (default: the plan's).
      seed: seeds the shuffling in `fit`.
      restore_state: resume from the training state a saved file carries (step and
        epoch counters, the schedule's position, momentum, TinyProp's Ymax); False
        starts fresh from the file's weights.
    """

    def __init__(self, model_bytes, arena_size=None, *, policy=None, batch_size=None, seed=0, restore_state=True):
        if isinstance(model_bytes, (str, os.PathLike)):
            with open(model_bytes, "rb") as f:
                model_bytes = f.read()
        elif not isinstance(model_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f"model_bytes must be bytes or a path to a .tflite, got {type(model_bytes).__name__}")
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(f"policy must be {POLICY_TYPES}")
        if arena_size is not None and (int(arena_size) != arena_size or not 0 < arena_size < 2 ** 48):
            raise InvalidArgumentError(f"arena_size must be a positive number of bytes, got {arena_size!r}")
        if int(seed) != seed or seed < 0:
            raise InvalidArgumentError(f"seed must be a whole number >= 0, got {seed!r}")
        if batch_size is not None and (int(batch_size) != batch_size or not 1 <= batch_size <= 65536):
            raise InvalidArgumentError(f"batch_size must be an integer from 1 to 65536, got {batch_size!r}")
        self._arena_size = arena_size
        self._policy_override = policy
        self._seed = seed
        # The C++ side verifies the bytes before Python reads anything from them.
        self._core = self._make_core(bytes(model_bytes), batch_size or 0, restore_state)
        self.info = read_model_info(self._core.model_bytes())
        self.stop_training = False

    def _make_core(self, model_bytes, batch_size, restore_state=True):
        policy = self._policy_override
        if policy is not None:
            layers = None
            if policy.needs_layer_count:
                layers = sum(1 for op in _core.describe(model_bytes)["ops"] if op["layer"] >= 0)
            try:
                policy = policy.to_params(layers)
            except ValueError as e:
                raise InvalidArgumentError(str(e)) from None
        return _core.Trainer(model_bytes, self._arena_size or 0, batch_size, policy, restore_state)

    # --- properties -----------------------------------------------------------------
    @property
    def model_bytes(self):
        """The .tflite with the current (trained) weights and training state."""
        return self._core.model_bytes()

    @property
    def policy(self):
        return policy_from_dict(self._core.policy)

    @property
    def gate_tau(self):
        """TinyPropV2's gate threshold in use: the configured tau, or where the budget moved it."""
        return self._core.gate_tau

    @property
    def budget_spent(self):
        """The budget's moving average of backward MACs / full backprop's (float32)."""
        return self._core.budget_spent

    @property
    def batch_size(self):
        return self._core.batch_size

    @property
    def loss(self):
        return self.info.loss

    @property
    def counters(self):
        """Cumulative steps, updates, samples, trained/skipped samples, MACs and epochs."""
        return self._core.counters

    @property
    def epochs_trained(self):
        """Epochs `fit` has completed over this model's life (carried by saved files)."""
        return int(self._core.counters["epochs"])

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
        """Writes the .tflite with its weights and training state: `MicroTrainer(path)`
        continues exactly where this trainer stands; stock TFLM runs the file."""
        if not self._core.has_state_in_model:
            warnings.warn("this model was converted by an older tflm_train and has no room for its training "
                          "state: the file keeps the weights only; re-convert the model to resume exactly",
                          stacklevel=2)
        with open(path, "wb") as f:
            f.write(self.model_bytes)

    def get_weights(self):
        """The trainable layers' weights and biases, in forward order, in TFLite's
        layout (dense [out, in], convolutions OHWI), as copies."""
        shapes = []
        for op in self.info.trainable_layers:
            shapes.append(op.weight_shape)
            if op.has_bias:
                shapes.append((op.bias_size,))
        return [w.reshape(shape) for w, shape in zip(self._core.get_weights(), shapes)]

    def set_weights(self, weights):
        """Sets what `get_weights` returns (same order and sizes); checks all before writing any."""
        self._core.set_weights([np.ascontiguousarray(w, np.float32).reshape(-1) for w in weights])

    def get_state(self):
        """Trainer state beyond the weights (counters, Ymax, momentum), as bytes."""
        return self._core.save_state()

    def set_state(self, state):
        self._core.load_state(bytes(state))

    def reset_policy_state(self):
        """Forgets TinyProp's running maxima."""
        self._core.reset_policy_state()

    # --- checkpoints in flash (docs/checkpoints.md) ---------------------------------------
    def checkpoint_storage_bytes(self, page_size=4096):
        """The flash region (two slots of whole `page_size` pages) this model's checkpoints need."""
        _check_flash_geometry(page_size, 1)
        size = int(self._core.checkpoint_storage_bytes(page_size))
        if size == 0:
            if page_size & (page_size - 1):
                raise InvalidArgumentError(f"page_size must be a power of two, got {page_size}")
            raise InvalidArgumentError(f"two slots of {page_size}-byte pages make a region of 4 GiB or more")
        return size

    def save_checkpoint(self, path, page_size=4096, program_size=4, region_size=None):
        """Saves the weights and training state into the flash image at `path`, as a
        device's `Trainer::SaveCheckpoint` writes them into its flash: the file is the
        raw region. An existing file is that region (its size must fit this model; the
        save goes to the slot that does not hold its newest checkpoint); otherwise a
        fresh erased region of `region_size` bytes is made, by default
        `checkpoint_storage_bytes(page_size)`. Slot 1 starts at half the region and
        every header records the region's size, so an image for a device must be
        exactly the size of the device's region: pass that as `region_size`.
        The file is replaced atomically."""
        _check_flash_geometry(page_size, program_size)
        if region_size is not None:
            _check_byte_count("region_size", region_size)
        path = os.fspath(path)
        image = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                image = f.read()
            if region_size is not None and len(image) != region_size:
                raise InvalidArgumentError(f"{path}: the file is a region of {len(image)} bytes, not region_size "
                                           f"{region_size}; remove it to start a region of another size")
        elif region_size is not None:
            image = b"\xff" * region_size
        try:
            image = self._core.save_checkpoint(image, page_size, program_size)
        except TrainerError as e:
            raise type(e)(f"{path}: {e}") from None
        temp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with open(temp, "xb") as f:
                f.write(image)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    def load_checkpoint(self, path, page_size=4096, program_size=4):
        """Restores the newest complete checkpoint of this model from the flash image
        at `path` (written by `save_checkpoint` or read out of a device): its weights
        and training state, as if training had never stopped. Returns False, changing
        nothing, when the image holds none; refuses a checkpoint of another model, and
        one saved in a region of another size than the file's."""
        _check_flash_geometry(page_size, program_size)
        path = os.fspath(path)
        with open(path, "rb") as f:
            image = f.read()
        try:
            return bool(self._core.load_checkpoint(image, page_size, program_size))
        except TrainerError as e:
            raise type(e)(f"{path}: {e}") from None

    # --- data ---------------------------------------------------------------------------
    def _x(self, x, name="x"):
        x = _as_float_array(name, x)
        want = tuple(self.info.input_shape[1:])
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
            raise InvalidArgumentError(f"{name} has shape {x.shape}; the model takes "
                                       f"(samples, {', '.join(map(str, want))})")
        if len(x) == 0:
            raise InvalidArgumentError(f"{name} holds no samples; give at least one")
        return x.reshape(len(x), -1)

    def _y(self, y, samples, name="y"):
        y = _as_float_array(name, y)
        if self.info.loss == "sparse_categorical_crossentropy":
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise InvalidArgumentError(f"{name} has shape {y.shape}; sparse labels are (samples,) class indices")
        else:
            want = tuple(self.info.output_shape[1:])
            if y.ndim != len(want) + 1 or tuple(y.shape[1:]) != want:
                raise InvalidArgumentError(f"{name} has shape {y.shape}; this loss takes "
                                           f"(samples, {', '.join(map(str, want))})")
        if len(y) != samples:
            raise InvalidArgumentError(f"x has {samples} samples but {name} has {len(y)}")
        return y.reshape(len(y), -1)

    def _data(self, x, y, name=""):
        """(x, y) as the C++ takes them, every sample checked before any is used."""
        prefix = name + " " if name else ""
        x = self._x(x, prefix + "x")
        y = self._y(y, len(x), prefix + "y")
        try:
            self._core.check(x, y)
        except TrainerError as e:
            raise type(e)(f"{prefix}{e}") from None
        return x, y

    def check_data(self, x, y=None, name=""):
        """Raises the error fit/evaluate (or predict, without y) would raise for this data,
        naming the first bad sample; `name` (e.g. "test") prefixes the message."""
        if y is None:
            x = self._x(x, (name + " x").strip())
            self._core.check(x)
        else:
            self._data(x, y, name)

    def _validation(self, validation_data):
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise InvalidArgumentError("validation_data must be a tuple (x_val, y_val)")
        return self._data(*validation_data, name="validation")

    def _ensure_batch(self, batch_size):
        """Rebuilds the C++ trainer for a larger batch, carrying weights and state over."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size <= self._core.batch_size:
            return
        state, weights = self._core.save_state(), self._core.model_bytes()
        try:
            core = self._make_core(weights, int(batch_size))  # resumes from the state in `weights`
        except ArenaTooSmallError as e:
            error = ArenaTooSmallError(f"batch_size={batch_size} needs a larger arena: {e}")
            error.required_bytes = e.required_bytes
            raise error from None
        core.load_state(state)
        self._core = core

    # --- Keras-style API ----------------------------------------------------------------
    def train_step(self, x, y):
        """One update from the batch (x, y); returns a StepResult."""
        x, y = self._data(x, y)
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
        """Trains for `epochs - initial_epoch` passes over (x, y) and returns a History.

        Logs per epoch: loss (mean over samples, before each update), accuracy (for
        classification losses), skipped (share of samples TinyPropV2 skipped),
        forward_macs and backward_macs, and val_loss/val_accuracy with validation_data.
        `callbacks` takes tflm_train's and Keras' callbacks alike.

        Every sample of x, y and validation_data is checked before the first update,
        and a fit that raises leaves the weights and training state as they were.
        """
        if int(epochs) != epochs or int(initial_epoch) != initial_epoch or min(epochs, initial_epoch) < 0:
            raise InvalidArgumentError(f"epochs and initial_epoch must be whole numbers >= 0, got {epochs!r}, "
                                       f"{initial_epoch!r}")
        x, y = self._data(x, y)
        validation = None if validation_data is None else self._validation(validation_data)
        batch_size = self._core.batch_size if batch_size is None else batch_size
        self._ensure_batch(batch_size)
        callbacks = list(callbacks or [])
        _check_callbacks(callbacks, self)
        verbose = 1 if verbose == "auto" else int(verbose)
        weights, state = self._core.get_weights(), self._core.save_state()
        try:
            return self._fit(x, y, int(epochs), batch_size, validation, callbacks, verbose, shuffle,
                             int(initial_epoch))
        except Exception:
            self._core.set_weights(weights)
            self._core.load_state(state)
            raise

    def _fit(self, x, y, epochs, batch_size, validation, callbacks, verbose, shuffle, initial_epoch):
        history = History()
        callbacks = [history] + callbacks
        n = len(x)
        batches = (n + batch_size - 1) // batch_size
        params = {"verbose": verbose, "epochs": epochs, "steps": batches}
        for cb in callbacks:
            cb.set_model(self)
            if hasattr(cb, "set_params"):
                cb.set_params(params)
        self.stop_training = False
        _call(callbacks, "on_train_begin", {})
        # Batches go to C++ in chunks unless a callback hooks every batch, which then
        # runs between batches exactly as in Keras.
        per_batch_hooks = any(_hooks_every_batch(cb) for cb in callbacks)
        chunk = 1 if per_batch_hooks else max(1, 512 // batch_size)
        for epoch in range(initial_epoch, epochs):
            _call(callbacks, "on_epoch_begin", epoch, {})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = ProgressBar(batches) if verbose == 1 else None
            # Unshuffled, each chunk is a slice of x and y (a view, no copy of the samples).
            order = epoch_order(self._seed, self.epochs_trained, n) if shuffle else None
            loss_sum = correct = skipped = fwd = bwd = 0.0
            seen = 0
            for first in range(0, batches, chunk):
                last = min(first + chunk, batches)
                if order is None:
                    index = slice(first * batch_size, last * batch_size)
                else:
                    index = order[first * batch_size:last * batch_size]
                if per_batch_hooks:
                    _call(callbacks, "on_train_batch_begin", first, {})
                r = self._core.train_steps(x[index], y[index], batch_size)
                sizes = np.minimum(batch_size, n - np.arange(first, last) * batch_size)
                history.batch_loss.extend(float(v) for v in r["loss"])
                history.batch_epoch.extend([epoch] * (last - first))
                if per_batch_hooks:  # running logs after every batch
                    for i, b in enumerate(range(first, last)):
                        seen += int(sizes[i])
                        loss_sum += float(r["loss"][i]) * sizes[i]
                        correct += float(r["correct"][i])
                        batch_logs = self._running_logs(loss_sum, correct, seen)
                        _call(callbacks, "on_train_batch_end", b, batch_logs)
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
            self._core.count_epoch()
            logs = dict(batch_logs, skipped=skipped / seen, forward_macs=int(fwd), backward_macs=int(bwd))
            if validation is not None:
                val = self._evaluate(*validation)
                logs.update({f"val_{k}": v for k, v in val.items()})
            if bar:
                bar.update(batches, {k: v for k, v in logs.items() if "macs" not in k}, final=True)
            elif verbose == 2:
                print(" - ".join(f"{k}: {v:.4g}" for k, v in logs.items() if "macs" not in k))
            _call(callbacks, "on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        _call(callbacks, "on_train_end", {})
        return history

    def _running_logs(self, loss_sum, correct, seen):
        logs = {"loss": loss_sum / seen}
        if self.info.loss in _CLASSIFYING:
            logs["accuracy"] = correct / seen
        return logs

    def _evaluate(self, x, y):
        losses, correct = self._core.evaluate(x, y)
        result = {"loss": float(np.mean(losses, dtype=np.float64))}
        if self.info.loss in _CLASSIFYING:
            result["accuracy"] = float(np.mean(correct, dtype=np.float64))
        return result

    def evaluate(self, x, y, batch_size=None, verbose=0, return_dict=False):
        """Mean loss (and accuracy for classification losses), as Keras' evaluate."""
        result = self._evaluate(*self._data(x, y))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else list(result.values())

    def predict(self, x, batch_size=None, verbose=0):
        """Model outputs for x, shaped (samples, *output_shape)."""
        x = self._x(x)
        self._core.check(x)
        out = self._core.predict(x)
        return out.reshape((len(x),) + tuple(self.info.output_shape[1:]))
