"""What a new user hit, each fixed at its root: a failed fit changes no weight,
bad data and bad options get one typed sentence (naming the sample), nothing is
silently dropped, Keras layer subclasses convert, and the CLI stays quiet."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.errors import BadInputError, BadLabelError, ConversionError, InvalidArgumentError, NonFiniteError


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(21)
    return keras.Sequential([keras.Input((4, 5)), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


@pytest.fixture(scope="module")
def model_bytes(model):
    return tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                              optimizer=tflm_train.SGD(0.05, momentum=0.5), policy=tflm_train.TinyProp())


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(22)
    x = rng.normal(size=(600, 4, 5)).astype(np.float32)
    return x, rng.integers(0, 3, 600)


def _snapshot(trainer):
    return trainer.model_bytes, trainer.get_state()


# --- a failed call changes no weight -----------------------------------------------------------

@pytest.mark.parametrize("where", ["x", "y", "validation"])
def test_bad_sample_late_in_the_data_fails_before_any_update(model_bytes, data, where):
    """The reported case: a NaN at sample 550 of 600 raised after 20 updates."""
    x, y = data[0].copy(), data[1].copy()
    trainer = tflm_train.MicroTrainer(model_bytes)
    trainer.fit(x[:50], y[:50], verbose=0)
    before = _snapshot(trainer)
    validation = (x[:100].copy(), y[:100].copy())
    if where == "x":
        x[550, 2, 3] = np.nan
        error, match = BadInputError, "sample 550: input value 13 is NaN"
    elif where == "y":
        y[550] = 3
        error, match = BadLabelError, r"sample 550: label is not a class index in \[0, 3\)"
    else:
        validation[1][70] = -1
        error, match = BadLabelError, "validation sample 70: label"
    counters = trainer.counters
    with pytest.raises(error, match=match):
        trainer.fit(x, y, epochs=2, verbose=0, validation_data=validation)
    assert _snapshot(trainer) == before
    assert trainer.counters == counters  # refused up front: not one step ran (and was rolled back)
    with pytest.raises(error, match=match.replace("validation ", "")):
        if where == "validation":
            trainer.evaluate(*validation)
        else:
            trainer.evaluate(x, y)


def test_predict_checks_every_sample_first(model_bytes, data):
    x = data[0][:10].copy()
    x[7, 0, 0] = np.inf
    with pytest.raises(BadInputError, match="sample 7"):
        tflm_train.MicroTrainer(model_bytes).predict(x)


def test_fit_that_diverges_is_rolled_back(model_bytes, data):
    """A step refused midway (its update would overflow) undoes the whole fit:
    weights, momentum, counters and Ymax are as before the call."""
    x, y = data
    x = x.copy()
    x[300:] *= 1e18  # finite inputs that drive the weights to overflow after 300 good steps
    trainer = tflm_train.MicroTrainer(model_bytes)
    before = _snapshot(trainer)
    with pytest.raises(NonFiniteError):
        trainer.fit(x, y, verbose=0, shuffle=False)
    assert _snapshot(trainer) == before
    trainer.fit(x[:300], y[:300], verbose=0, shuffle=False)  # the first 300 alone train
    assert _snapshot(trainer) != before


def test_callback_error_rolls_back_too(model_bytes, data):
    trainer = tflm_train.MicroTrainer(model_bytes)
    before = _snapshot(trainer)

    def boom(epoch, logs):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        trainer.fit(*data, epochs=2, verbose=0, callbacks=[tflm_train.LambdaCallback(on_epoch_end=boom)])
    assert _snapshot(trainer) == before


# --- one clear sentence ------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["fit", "evaluate", "predict", "validation", "train_step"])
def test_empty_data_is_one_sentence(model_bytes, data, call):
    trainer = tflm_train.MicroTrainer(model_bytes)
    empty_x, empty_y = data[0][:0], data[1][:0]
    run = {"fit": lambda: trainer.fit(empty_x, empty_y, verbose=0),
           "evaluate": lambda: trainer.evaluate(empty_x, empty_y),
           "predict": lambda: trainer.predict(empty_x),
           "validation": lambda: trainer.fit(*data, verbose=0, validation_data=(empty_x, empty_y)),
           "train_step": lambda: trainer.train_step(empty_x, empty_y)}[call]
    with pytest.raises(InvalidArgumentError, match="holds no samples"):
        run()


def test_huge_arena_is_a_typed_error(model_bytes):
    with pytest.raises(InvalidArgumentError, match="cannot allocate 1099511627776 bytes for the arena"):
        tflm_train.MicroTrainer(model_bytes, arena_size=2 ** 40)
    with pytest.raises(InvalidArgumentError, match="arena_size must be a positive number of bytes"):
        tflm_train.MicroTrainer(model_bytes, arena_size=2 ** 70)
    assert tflm_train.InvalidArgumentError is InvalidArgumentError


@pytest.mark.parametrize("kwargs, match", [(dict(epochs=-1), "epochs"), (dict(batch_size=0), "batch_size"),
                                           (dict(callbacks=[print]), "callbacks")])
def test_bad_fit_arguments_are_refused(model_bytes, data, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        tflm_train.MicroTrainer(model_bytes).fit(*data, verbose=0, **kwargs)


def test_strings_as_labels_are_a_typed_error_that_is_also_a_type_error(model_bytes, data):
    from tflm_train.errors import InvalidDtypeError

    with pytest.raises(InvalidDtypeError, match="y must hold real numbers") as info:
        tflm_train.MicroTrainer(model_bytes).fit(data[0][:3], np.array(["a", "b", "c"]), verbose=0)
    assert isinstance(info.value, TypeError) and isinstance(info.value, tflm_train.TrainerError)


def test_two_input_model_is_refused_by_name():
    a, b = keras.Input((3,)), keras.Input((3,))
    two = keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(keras.layers.Add()([a, b])), name="pair")
    with pytest.raises(ConversionError, match="model 'pair' has 2 inputs and 1 outputs"):
        tflm_train.convert(two, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD())


@pytest.mark.parametrize("option", [dict(clipnorm=1.0), dict(clipvalue=0.5), dict(global_clipnorm=2.0),
                                    dict(nesterov=True, momentum=0.9)])
def test_keras_optimizer_options_are_refused_not_dropped(model, option):
    with pytest.raises(ConversionError, match=list(option)[0]):
        tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(**option))


def test_compare_checks_labels_before_keras_runs(model, data):
    from tflm_train.compare import compare

    x, y = data[0][:20], data[1][:20].copy()
    y[12] = 7
    with pytest.raises(BadLabelError, match="sample 12"):
        compare(model, x, y, x, data[1][:20], loss="sparse_categorical_crossentropy",
                optimizer=tflm_train.SGD(0.1), policies=[tflm_train.Full()], epochs=1, verbose=0)


# --- Keras layer subclasses ---------------------------------------------------------------------

class DepthwiseShim(keras.layers.DepthwiseConv2D):
    """What an old .h5 needs: DepthwiseConv2D without the obsolete `groups` argument."""

    def __init__(self, *args, groups=None, **kwargs):
        super().__init__(*args, **kwargs)


class DoubledDense(keras.layers.Dense):
    def call(self, inputs):
        return super().call(inputs) * 2.0


def test_h5_with_custom_object_shim_converts_with_parity(tmp_path):
    keras.utils.set_random_seed(23)
    original = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.DepthwiseConv2D(3, name="dw"),
                                 keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax", name="out")])
    original.save(tmp_path / "old.h5")
    loaded = keras.models.load_model(tmp_path / "old.h5", compile=False,
                                     custom_objects={"DepthwiseConv2D": DepthwiseShim})
    assert type(loaded.layers[0]) is DepthwiseShim
    trainer = tflm_train.MicroTrainer(tflm_train.convert(loaded, loss="sparse_categorical_crossentropy",
                                                         optimizer=tflm_train.SGD(0.1)))
    assert [op.name for op in trainer.info.trainable_layers] == ["dw", "out"]
    x = np.random.default_rng(24).normal(size=(5, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(trainer.predict(x), original.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_subclass_that_overrides_call_is_refused_by_name():
    model = keras.Sequential([keras.Input((4,)), DoubledDense(3, activation="softmax", name="twice")])
    with pytest.raises(ConversionError, match="'twice' \\(DoubledDense\\) subclasses Dense but overrides call"):
        tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD())


# --- the CLI --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory, model, model_bytes, data):
    d = tmp_path_factory.mktemp("cli_errors")
    model.save(d / "m.keras")
    (d / "m.tflite").write_bytes(model_bytes)
    x, y = data
    np.savez(d / "d.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:80], y_test=y[60:80])
    np.savez(d / "wrong_shape.npz", x_train=x[:60, :, :4], y_train=y[:60])
    bad_test = y[60:80].copy()
    bad_test[5] = 9
    np.savez(d / "bad_test.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:80], y_test=bad_test)
    np.savez(d / "empty.npz", x_train=x[:0], y_train=y[:0])
    return d


def _cli(workdir, *args):
    return subprocess.run([sys.executable, "-m", "tflm_train.cli", *args], cwd=workdir, capture_output=True,
                          text=True, timeout=300)


def test_cli_convert_is_quiet_and_needs_a_loss(workdir):
    r = _cli(workdir, "convert", "m.keras", "-o", "m1.tflite")
    assert r.returncode == 2 and "the following arguments are required: --loss" in r.stderr
    r = _cli(workdir, "convert", "m.keras", "-o", "m1.tflite", "--loss", "sparse_categorical_crossentropy")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = _cli(workdir, "convert", "m.keras", "-o", "m2.tflite", "--loss", "sparse_categorical_crossentropy",
             "--verbose")
    assert r.returncode == 0 and r.stderr != ""  # TensorFlow's own logs, on request


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: must be 1 or more, got 0"),
    (["--epochs", "-1"], "--epochs: must be 1 or more, got -1"),
    (["--limit", "-5"], "--limit: must be 0 or more, got -5"),
    (["--batch-size", "0"], "--batch-size: must be 1 or more, got 0"),
])
def test_cli_refuses_meaningless_counts(workdir, args, message):
    r = _cli(workdir, "train", "m.tflite", "--data", "d.npz", *args)
    assert r.returncode == 2 and message in r.stderr


@pytest.mark.parametrize("data_file, message", [
    ("wrong_shape.npz", "the training data has samples of shape (4, 4) but the model takes (4, 5)"),
    ("bad_test.npz", "test sample 5: label is not a class index"),
    ("empty.npz", "the training data holds no samples"),
])
def test_cli_bad_data_is_one_line_before_training(workdir, data_file, message):
    r = _cli(workdir, "train", "m.tflite", "--data", data_file, "-o", "never.tflite")
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (workdir / "never.tflite").exists()


def test_main_job_is_quiet(tmp_path):
    """The main job (tiny sizes) prints nothing on stderr without --verbose."""
    example = Path(__file__).resolve().parent.parent / "examples" / "mnist_tinypropv2.py"
    r = subprocess.run([sys.executable, str(example), "--train-samples", "40", "--test-samples", "20",
                        "--epochs", "1", "--out-dir", "out"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "TFLM runtime on the trained TinyPropV2 file" in r.stdout


def test_cli_train_and_compare_need_data(workdir):
    for command in (["train", "m.tflite"], ["compare", "m.keras", "--loss", "sparse_categorical_crossentropy"]):
        r = _cli(workdir, *command)
        assert r.returncode == 2 and "the following arguments are required: --data" in r.stderr


def test_quiet_tensorflow_under_a_capturing_stderr(capsys):
    """A test runner's captured sys.stderr has no file descriptor: quiet_tensorflow must
    still restore the crash report it found enabled."""
    import faulthandler

    was = faulthandler.is_enabled()
    faulthandler.enable(file=sys.__stderr__)
    try:
        with tflm_train.quiet_tensorflow():
            pass
        assert faulthandler.is_enabled()
    finally:
        if not was:
            faulthandler.disable()
