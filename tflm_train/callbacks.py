"""Keras-style callbacks for MicroTrainer.fit."""

import sys
import time


class Callback:
    """Base class: override any of the hooks. `self.trainer` is the MicroTrainer."""

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class History(Callback):
    """Per-epoch logs, as Keras' History: `history.history["loss"]`, `history.epoch`."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. LambdaCallback(on_epoch_end=lambda e, logs: ...)."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not name.startswith("on_"):
                raise TypeError(f"unknown hook {name}")
            setattr(self, name, fn)


class EarlyStopping(Callback):
    """Stops fit when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="min"):
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best, self.wait = None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.trainer.stop_training = True


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
