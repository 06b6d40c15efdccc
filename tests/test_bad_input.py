"""Bad data get a tflm_train error (never a crash), leave the trainer and its weights
unchanged, and the trainer stays usable: inputs and labels of the wrong shape, type or
value, non-finite inputs, an arena too small for the batch, and steps that would write
NaN/Inf (huge inputs, learning rates or weight decay). (Bad model files:
tests/test_bad_model.py.)"""

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.errors import ArenaTooSmallError, BadInputError, BadLabelError, NonFiniteError, TrainerError

import helpers as H
from helpers import keras_model, model_bytes  # noqa: F401 (module fixtures: the shared small model)

N_IN, N_OUT = 6, H.BAD_INPUT_OUTPUTS


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(32)
    x = rng.normal(size=(8, 2, 3)).astype(np.float32)
    y = rng.integers(0, N_OUT, 8)
    return x, y


def _snapshot(trainer):
    return trainer.model_bytes, dict(trainer.counters), trainer.learning_rate, trainer.get_state()


def _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data):
    """The failed call changed nothing: same weights, counters and schedule position,
    and two good steps give bit-identical results to a trainer restored to the state
    before the bad call (so no gradient, momentum or step-counter state leaked)."""
    before_bytes, before_counters, before_lr, before_state = snapshot
    assert trainer.model_bytes == before_bytes
    assert dict(trainer.counters) == before_counters
    assert trainer.learning_rate == before_lr
    # (Ymax, the TinyProp state inside get_state(), is checked apart, in
    # test_refused_step_does_not_move_tinyprop_state; under Full it has no effect on
    # the comparison below.)
    x, y = data
    fresh = tflm_train.MicroTrainer(before_bytes)
    fresh.set_state(before_state)
    for t in (trainer, fresh):
        t.train_step(x[:4], y[:4])
        t.train_step(x[4:5], y[4:5])
    assert trainer.model_bytes == fresh.model_bytes
    assert trainer.model_bytes != before_bytes


# --- bad data ----------------------------------------------------------------------------------

@pytest.fixture
def trainer(model_bytes):
    return tflm_train.MicroTrainer(model_bytes)


@pytest.mark.parametrize("shape", [(4, 6), (4, 3, 2), (4, 2, 3, 1), (2, 3), (6,), (4, 2, 4)])
def test_wrong_input_shape_is_value_error(trainer, model_bytes, data, shape):
    x = np.zeros(shape, np.float32)
    y = np.zeros(shape[0], np.int64)
    snapshot = _snapshot(trainer)
    for call in (lambda: trainer.predict(x), lambda: trainer.train_step(x, y), lambda: trainer.evaluate(x, y),
                 lambda: trainer.fit(x, y, verbose=0)):
        with pytest.raises(ValueError):
            call()
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data)


def test_wrong_label_shape_or_count_is_value_error(trainer, model_bytes, data):
    x, y = data
    snapshot = _snapshot(trainer)
    for bad_y in (y[:3], np.zeros((4, 3)), np.zeros((4, 1, 1))):
        with pytest.raises(ValueError):
            trainer.train_step(x[:4], bad_y)
    with pytest.raises(ValueError):
        trainer.evaluate(x, y[:-1])
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data)


@pytest.mark.parametrize("bad", [
    np.full((4, 2, 3), "a"),
    np.full((4, 2, 3), None, dtype=object),
    np.ones((4, 2, 3), np.complex64),
    np.ones((4, 2, 3), np.complex128),
    np.ones((4, 2, 3)).astype(object),
])
def test_wrong_input_dtype_is_type_error(trainer, model_bytes, data, bad):
    snapshot = _snapshot(trainer)
    with pytest.raises(TypeError):
        trainer.predict(bad)
    with pytest.raises(TypeError):
        trainer.train_step(bad, np.zeros(4, np.int64))
    with pytest.raises(TypeError):
        trainer.evaluate(bad, np.zeros(4, np.int64))
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data)


@pytest.mark.parametrize("bad_y", [np.array(["0", "1", "2", "1"]), np.array([0, 1, None, 1], dtype=object),
                                   np.array([0, 1, 2, 1], np.complex64)])
def test_wrong_label_dtype_is_type_error(trainer, model_bytes, data, bad_y):
    x, _ = data
    snapshot = _snapshot(trainer)
    with pytest.raises(TypeError):
        trainer.train_step(x[:4], bad_y)
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data)


@pytest.mark.parametrize("label", [N_OUT, N_OUT + 0.0, -1, 1.5, 0.999, np.nan, np.inf, -np.inf, 1e10])
def test_bad_sparse_label_is_bad_label_error(trainer, model_bytes, data, label):
    x, y = data
    snapshot = _snapshot(trainer)
    with pytest.raises(BadLabelError):
        trainer.train_step(x[:1], np.array([label]))
    # In the middle of a batch: the whole batch is refused, nothing trains.
    batch_y = y[:4].astype(np.float64)
    batch_y[2] = label
    with pytest.raises(BadLabelError):
        trainer.train_step(x[:4], batch_y)
    with pytest.raises(BadLabelError):
        trainer.evaluate(x[:4], batch_y)
    with pytest.raises(BadLabelError):
        trainer.fit(x[:4], batch_y, batch_size=4, verbose=0)
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data)


@pytest.mark.parametrize("loss, final, bad_row", [
    ("categorical_crossentropy", "softmax", [1.5, -0.5, 0.0]),
    ("categorical_crossentropy", "softmax", [0.5, 0.0, 0.0]),
    ("categorical_crossentropy", "softmax", [np.nan, 1.0, 0.0]),
    ("mse", "linear", [0.0, np.inf, 0.0]),
    ("mse", "linear", [np.nan, 0.0, 0.0]),
    ("binary_crossentropy", "sigmoid", [0.0, np.nan, 1.0]),
])
def test_bad_dense_label_is_bad_label_error(loss, final, bad_row):
    model = H.mlp(N_IN, [5], N_OUT, final_activation=final, seed=34)
    model_bytes = tflm_train.convert(model, loss=loss, optimizer=tflm_train.SGD(0.1), batch_size=4)
    trainer = tflm_train.MicroTrainer(model_bytes)
    x, y = H.make_data(loss, 4, (N_IN,), N_OUT, np.random.default_rng(35))
    before = trainer.model_bytes
    y_bad = y.copy()
    y_bad[1] = bad_row
    with pytest.raises(BadLabelError):
        trainer.train_step(x, y_bad)
    assert trainer.model_bytes == before and trainer.counters["steps"] == 0
    trainer.train_step(x, y)
    assert trainer.model_bytes != before


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_bad_input_error(trainer, model_bytes, data, value):
    x, y = data
    bad = x[:4].copy()
    bad[3, 1, 2] = value
    snapshot = _snapshot(trainer)
    with pytest.raises(BadInputError):
        trainer.predict(bad)
    with pytest.raises(BadInputError):
        trainer.train_step(bad, y[:4])
    with pytest.raises(BadInputError):
        trainer.train_step(bad[3:], y[3:4])
    with pytest.raises(BadInputError):
        trainer.evaluate(bad, y[:4])
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, data)


# --- arena ----------------------------------------------------------------------------------------

def test_arena_too_small(model_bytes, data):
    needed = tflm_train.MicroTrainer(model_bytes).arena_report["required_bytes"]
    assert needed == tflm_train.read_model_info(model_bytes).memory["arena_bytes"]
    with pytest.raises(ArenaTooSmallError) as info:
        tflm_train.MicroTrainer(model_bytes, arena_size=64)
    assert info.value.required_bytes > 64
    assert info.value.required_bytes == needed
    assert str(needed) in str(info.value)
    with pytest.raises(ArenaTooSmallError):
        tflm_train.MicroTrainer(model_bytes, arena_size=needed - 1)
    exact = tflm_train.MicroTrainer(model_bytes, arena_size=needed)
    x, y = data
    exact.train_step(x[:4], y[:4])
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError):
            tflm_train.MicroTrainer(model_bytes, arena_size=bad)


def test_batch_larger_than_the_arena_allows(keras_model, data):
    """A batch-1 plan needs no gradient accumulators; an arena sized for it cannot
    train batches of 4. The trainer survives at batch size 1."""
    x, y = data
    model_bytes = tflm_train.convert(keras_model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(0.1, momentum=0.9), batch_size=1)
    needed = tflm_train.MicroTrainer(model_bytes).arena_report["required_bytes"]
    needed_batched = tflm_train.MicroTrainer(model_bytes, batch_size=4).arena_report["required_bytes"]
    assert needed_batched > needed
    trainer = tflm_train.MicroTrainer(model_bytes, arena_size=needed)
    trainer.train_step(x[:1], y[:1])
    before = _snapshot(trainer)
    with pytest.raises(ArenaTooSmallError) as info:
        trainer.train_step(x[:4], y[:4])
    assert info.value.required_bytes == needed_batched
    with pytest.raises(ArenaTooSmallError):
        trainer.fit(x, y, batch_size=4, verbose=0)
    assert trainer.batch_size == 1
    assert _snapshot(trainer) == before
    fresh = tflm_train.MicroTrainer(before[0])
    fresh.set_state(before[3])
    for t in (trainer, fresh):
        t.train_step(x[5:6], y[5:6])
    assert trainer.model_bytes == fresh.model_bytes != before[0]


# --- steps that would write NaN/Inf ---------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_huge_learning_rate_is_refused(keras_model, data, batch_size, momentum):
    model_bytes = tflm_train.convert(keras_model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(1e38, momentum=momentum), batch_size=batch_size)
    trainer = tflm_train.MicroTrainer(model_bytes)
    x, y = data
    before, state = trainer.model_bytes, trainer.get_state()
    for _ in range(2):
        with pytest.raises(NonFiniteError):
            trainer.train_step(x[:batch_size], y[:batch_size])
        assert trainer.model_bytes == before
        assert trainer.counters["steps"] == 0 and trainer.counters["updates"] == 0
    for name, (w, b) in H.weights_from_bytes(trainer.model_bytes).items():
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(b)), name
    assert isinstance(NonFiniteError("x"), TrainerError)
    # Still usable: inference works and matches the untrained model.
    np.testing.assert_allclose(trainer.predict(x), keras_model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def regression():
    """A ReLU regression net (nothing saturates) and its trainable file."""
    keras.utils.set_random_seed(36)
    model = keras.Sequential([keras.Input((2, 3)), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(N_OUT)])
    H.randomize_biases(model, np.random.default_rng(36))
    return model, tflm_train.convert(model, loss="mse", optimizer=tflm_train.SGD(0.05, momentum=0.9), batch_size=4)


@pytest.mark.parametrize("value", [1e20, 1e30])
@pytest.mark.parametrize("position", [0, 2, 3])
def test_overflowing_input_is_refused_and_leaves_no_trace(regression, position, value):
    """A finite but huge input makes the loss overflow. In a batch of 4 the bad
    sample sits at `position`: samples before it were already accumulated, and
    must be forgotten."""
    model, model_bytes = regression
    rng = np.random.default_rng(37)
    x = rng.normal(size=(8, 2, 3)).astype(np.float32)
    y = rng.normal(size=(8, N_OUT)).astype(np.float32)
    bad = x[:4].copy()
    bad[position] = value
    # Oracle: Keras' own MSE of that sample is not finite in float32.
    keras_loss = keras.losses.MeanSquaredError()(y[position:position + 1], model(bad[position:position + 1]))
    assert not np.isfinite(float(keras_loss))
    trainer = tflm_train.MicroTrainer(model_bytes)
    trainer.train_step(x[4:6], y[4:6])  # momentum state exists
    snapshot = _snapshot(trainer)
    with pytest.raises(NonFiniteError):
        trainer.train_step(bad, y[:4])
    with pytest.raises(NonFiniteError):
        trainer.train_step(bad[position:position + 1], y[position:position + 1])
    _assert_unchanged_and_usable(trainer, snapshot, model_bytes, (x, y))


@pytest.mark.parametrize("batch_size", [1, 2])
def test_weight_decay_overflow_is_refused(batch_size):
    """The gradient is exactly zero (the model already fits the target), so only
    weight decay moves the weight: w - w*wd*lr = 2 - 2*5*1e38 overflows to -Inf.
    The step must be refused with NonFiniteError and the weight stay 2."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer=keras.initializers.Constant(2.0), name="out")])
    model_bytes = tflm_train.convert(model, loss="mse", optimizer=tflm_train.SGD(1e38, weight_decay=5.0),
                                     batch_size=batch_size)
    trainer = tflm_train.MicroTrainer(model_bytes)
    before = trainer.model_bytes
    x = np.ones((batch_size, 1), np.float32)
    y = np.full((batch_size, 1), 2.0, np.float32)
    with pytest.raises(NonFiniteError):
        trainer.train_step(x, y)
    assert trainer.model_bytes == before
    w, _ = H.weights_from_bytes(trainer.model_bytes)["out"]
    assert w[0, 0] == 2.0


@pytest.mark.parametrize("how", ["overflowing_sample_in_batch", "huge_learning_rate"])
def test_refused_step_does_not_move_tinyprop_state(regression, how):
    """errors.py: "the trainer and its weights are unchanged by a failed call". With
    TinyProp the running maxima Ymax decide how many rows later steps keep, so a
    refused step must not raise them. Both cases back-propagate first (updating
    Ymax) and are refused afterwards: a batch whose last sample overflows, and a
    learning rate whose update would overflow."""
    model, model_bytes = regression
    rng = np.random.default_rng(38)
    x = rng.normal(size=(8, 2, 3)).astype(np.float32)
    y = rng.normal(size=(8, N_OUT)).astype(np.float32)
    if how == "huge_learning_rate":
        model_bytes = tflm_train.convert(model, loss="mse", optimizer=tflm_train.SGD(1e38), batch_size=1)
        bad_x, bad_y = x[:1], y[:1]
    else:
        bad_x, bad_y = x[:4].copy(), y[:4]
        bad_x[:3] *= 50.0  # large (finite) errors that raise Ymax ...
        bad_x[3] = 1e30    # ... then a sample whose loss overflows
    trainer = tflm_train.MicroTrainer(model_bytes, policy=tflm_train.TinyProp())
    state = trainer.get_state()
    ymax = trainer.ymax
    with pytest.raises(NonFiniteError):
        trainer.train_step(bad_x, bad_y)
    assert trainer.ymax == ymax
    assert trainer.get_state() == state
