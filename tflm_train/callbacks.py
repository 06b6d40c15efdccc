"""Callbacks for MicroTrainer.fit.

`fit` takes Keras' own callbacks as they are (`keras.callbacks.CSVLogger`,
`TerminateOnNaN`, `LambdaCallback`, `EarlyStopping` with an explicit `mode`, ...):
the trainer offers the surface they use (`stop_training`, `get_weights`/
`set_weights`, `set_model`/`set_params`), and Keras is never imported unless you
pass one. The classes here serve where Keras' cannot, or without Keras:
`EarlyStopping` infers `mode="auto"` from the monitor's name (Keras' infers it
from a compiled Keras model's metrics, which a MicroTrainer does not have).
"""

import sys
import time
import warnings


class Callback:
    """Base class, shaped like `keras.callbacks.Callback`: override any hook.

    `self.model` (also `self.trainer`) is the MicroTrainer being fitted and
    `self.params` holds `verbose`, `epochs` and `steps` (batches per epoch).
    """

    def __init__(self):
        self.model = self.trainer = None
        self.params = {}

    def set_model(self, model):
        self.model = model
        self.set_trainer(model)

    def set_trainer(self, trainer):
        """The hook of tflm_train 0.1 (set_model calls it): `self.trainer`."""
        self.trainer = trainer

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class History(Callback):
    """Per-epoch logs, as Keras' History: `history.history["loss"]`, `history.epoch`.

    Beyond Keras: `batch_loss` holds every batch's own mean loss in training
    order and `batch_epoch` the epoch of each, for per-step learning curves.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []
        self.batch_loss = []
        self.batch_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. LambdaCallback(on_epoch_end=lambda e, logs: ...)."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_"):
                raise TypeError(f"unknown hook {name}")
            setattr(self, name, fn)


class EarlyStopping(Callback):
    """Stops fit when `monitor` stops improving, with Keras' EarlyStopping semantics.

    Args:
      monitor: a key of the epoch logs ("val_loss", "val_accuracy", "loss", ...).
      min_delta: an improvement smaller than this does not count.
      patience: epochs without improvement before stopping.
      verbose: 1 prints when it stops or restores.
      mode: "min", "max", or "auto": "max" for names ending in "accuracy", "min"
        for names ending in "loss"; any other name needs an explicit mode (a
        ValueError when its first value arrives).
      baseline: training stops if the monitor does not beat this within `patience`.
      restore_best_weights: at the end, put back the weights of the best epoch.
      start_from_epoch: epochs to wait before monitoring at all.

    A monitor that is missing from the logs (a typo, or "val_loss" without
    validation data) warns once per fit and never stops training.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.verbose = monitor, mode, verbose
        self.min_delta = abs(min_delta)
        self.patience, self.baseline = patience, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.on_train_begin()

    def _direction(self):
        """"min" or "max"; auto mode decides from the monitor's name once it is in the logs."""
        if self.mode != "auto":
            return self.mode
        name = self.monitor.removeprefix("val_")
        if name.endswith("accuracy") or name.endswith("acc"):
            return "max"
        if name.endswith("loss"):
            return "min"
        raise ValueError(f"EarlyStopping cannot tell whether '{self.monitor}' should go up or down: "
                         "pass mode='min' or mode='max'")

    def _improves(self, value, reference):
        if reference is None:
            return True
        if self._direction() == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = self.best_weights = None
        self._warned = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            if not self._warned:
                warnings.warn(f"EarlyStopping monitors '{self.monitor}', which is not in the logs "
                              f"(available: {', '.join(logs)}); it will not stop training", stacklevel=2)
                self._warned = True
            return
        self._direction()  # an unknown direction fails on the first value, as in Keras
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ProgressBar:
    """A Keras-like one-line progress bar: ` 120/200 [=====>....] - 1s - loss: 0.31`."""

    def __init__(self, total, stream=None, width=30):
        self.total, self.width = total, width
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, done, values, final=False):
        now = time.perf_counter()
        if not final and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = int(self.width * done / max(self.total, 1))
        bar = "=" * max(filled - 1, 0) + (">" if filled < self.width else "=") + "." * (self.width - filled)
        text = " - ".join(f"{k}: {v:.4g}" for k, v in values.items())
        digits = len(str(self.total))
        self.stream.write(f"\r{done:{digits}d}/{self.total} [{bar}] - {now - self.start:.0f}s - {text}")
        if final:
            self.stream.write("\n")
        self.stream.flush()
