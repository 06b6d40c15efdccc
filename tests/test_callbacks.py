"""MicroTrainer.fit with callbacks: Keras' own callbacks work unchanged, and
tflm_train's EarlyStopping follows Keras' semantics (mode="auto", min_delta,
patience, baseline, restore_best_weights, start_from_epoch)."""

import csv
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.callbacks import EarlyStopping


@pytest.fixture(scope="module")
def setup():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(0.05))
    rng = np.random.default_rng(6)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return model_bytes, x, y


class _Model:
    """What EarlyStopping touches of a model: stop_training and weights."""

    def __init__(self):
        self.stop_training = False
        self.weights = [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


def _run(callback, values, monitor="val_accuracy"):
    """Feeds per-epoch values to a callback; returns the epoch it stopped at (or None)."""
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            callback.on_train_end()
            return epoch, model
    callback.on_train_end()
    return None, model


def test_auto_mode_maximizes_accuracy_and_minimizes_loss():
    # The reported case: val_accuracy rising 0.775 -> 0.835 must not stop.
    assert _run(EarlyStopping(monitor="val_accuracy", patience=1), [0.775, 0.80, 0.82, 0.835])[0] is None
    assert _run(EarlyStopping(monitor="val_accuracy", patience=1), [0.8, 0.7, 0.6, 0.5])[0] == 1
    assert _run(EarlyStopping(monitor="val_loss"), [0.5, 0.4, 0.45], "val_loss")[0] == 2
    assert _run(EarlyStopping(monitor="loss"), [0.5, 0.4, 0.3], "loss")[0] is None
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        _run(EarlyStopping(monitor="skipped"), [0.1], "skipped")
    assert _run(EarlyStopping(monitor="skipped", mode="max"), [0.1, 0.2, 0.1], "skipped")[0] == 2


def test_same_decisions_as_keras_early_stopping():
    """Keras' EarlyStopping (explicit mode) and ours stop at the same epoch and
    restore the same weights on the same sequences."""
    sequences = [[0.5, 0.51, 0.5105, 0.49, 0.6, 0.6, 0.59, 0.58], [0.3, 0.2, 0.25, 0.24, 0.1, 0.4, 0.4, 0.4],
                 [0.1, 0.1, 0.1, 0.1], [0.9, 0.8, 0.95, 0.7, 0.96, 0.96]]
    for values in sequences:
        for options in (dict(patience=0), dict(patience=2, min_delta=0.005), dict(patience=1, baseline=0.55),
                        dict(patience=1, start_from_epoch=2, restore_best_weights=True),
                        dict(patience=2, restore_best_weights=True)):
            for mode in ("min", "max"):
                ours = _run(EarlyStopping(monitor="m", mode=mode, **options), values, "m")
                theirs = _run(keras.callbacks.EarlyStopping(monitor="m", mode=mode, **options), values, "m")
                assert ours[0] == theirs[0], (values, options, mode)
                np.testing.assert_array_equal(ours[1].weights[0], theirs[1].weights[0])


def test_missing_monitor_warns_once_and_never_stops(setup):
    model_bytes, x, y = setup
    trainer = tflm_train.MicroTrainer(model_bytes)
    with pytest.warns(UserWarning, match="val_los") as record:
        history = trainer.fit(x, y, epochs=3, verbose=0, callbacks=[EarlyStopping(monitor="val_los")])
    assert len([w for w in record if "val_los" in str(w.message)]) == 1
    assert len(history.epoch) == 3


def test_restore_best_weights_in_fit(setup):
    """Real fit: the restored weights are those recorded at the best epoch."""
    model_bytes, x, y = setup
    trainer = tflm_train.MicroTrainer(model_bytes)
    snapshots = []
    record = tflm_train.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(trainer.get_weights()))
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = trainer.fit(x, y, epochs=6, verbose=0, validation_data=(x[:30], 2 - y[:30]), callbacks=[record, stop])
    best = int(np.argmin(history.history["val_loss"]))
    for got, want in zip(trainer.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(got, want)


def test_keras_callbacks_work_unchanged(setup, tmp_path):
    model_bytes, x, y = setup
    trainer = tflm_train.MicroTrainer(model_bytes)
    seen = []
    log = tmp_path / "log.csv"
    history = trainer.fit(
        x, y, epochs=3, verbose=0, validation_data=(x[:30], y[:30]),
        callbacks=[keras.callbacks.CSVLogger(str(log)), keras.callbacks.TerminateOnNaN(),
                   keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])),
                                                  on_train_batch_end=lambda batch, logs: seen.append(batch)),
                   keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=5)])
    rows = list(csv.DictReader(log.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx(history.history["val_accuracy"])
    assert [s for s in seen if isinstance(s, tuple)] == [(e, history.history["loss"][e]) for e in range(3)]
    assert sum(isinstance(s, int) for s in seen) == 3 * 90  # every batch, at batch size 1


def test_keras_early_stopping_stops_and_restores(setup):
    model_bytes, x, y = setup
    trainer = tflm_train.MicroTrainer(model_bytes)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, restore_best_weights=True)
    history = trainer.fit(x, y, epochs=30, verbose=0, validation_data=(x[:30], 2 - y[:30]), callbacks=[stop])
    assert len(history.epoch) < 30 and stop.stopped_epoch == history.epoch[-1]
    # Keras' auto mode needs a compiled Keras model's metrics: refused before the first update.
    counters = trainer.counters
    with pytest.raises(tflm_train.InvalidArgumentError, match="mode='max'"):
        trainer.fit(x, y, epochs=2, verbose=0, validation_data=(x[:30], y[:30]),
                    callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy")])
    assert trainer.counters == counters


class _CountingCore:
    """The C++ core, counting the samples of each train_steps call."""

    def __init__(self, core, calls):
        self._core, self.calls = core, calls

    def __getattr__(self, name):
        return getattr(self._core, name)

    def train_steps(self, x, y, batch_size):
        self.calls.append(len(x))
        return self._core.train_steps(x, y, batch_size)


def test_keras_callbacks_without_batch_hooks_keep_the_fast_path(setup):
    """Only a callback with a batch hook of its own makes fit stop after every batch."""
    model_bytes, x, y = setup
    trainer = tflm_train.MicroTrainer(model_bytes)
    calls = []
    trainer._core = _CountingCore(trainer._core, calls)
    trainer.fit(x, y, verbose=0, callbacks=[keras.callbacks.CSVLogger("/dev/null")])
    assert calls == [90]
    calls.clear()
    trainer.fit(x, y, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])  # hooks on_batch_end
    assert calls == [1] * 90


def test_fit_with_own_callbacks_does_not_import_keras(setup, tmp_path):
    model_bytes, x, y = setup
    (tmp_path / "m.tflite").write_bytes(model_bytes)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    child = textwrap.dedent("""
        import sys, numpy as np, tflm_train
        d = np.load("d.npz")
        t = tflm_train.MicroTrainer("m.tflite")
        t.fit(d["x"], d["y"], epochs=2, verbose=0, validation_data=(d["x"], d["y"]),
              callbacks=[tflm_train.EarlyStopping(monitor="val_accuracy"), tflm_train.LambdaCallback()])
        print("keras" in sys.modules, "tensorflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_params_reach_callbacks(setup):
    model_bytes, x, y = setup
    got = {}

    class Spy(tflm_train.Callback):
        def on_train_begin(self, logs=None):
            got.update(self.params, model=self.model, trainer=self.trainer)

    trainer = tflm_train.MicroTrainer(model_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[Spy()])
    assert got == {"verbose": 0, "epochs": 2, "steps": 23, "model": trainer, "trainer": trainer}
