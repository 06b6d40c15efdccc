"""A saved .tflite carries the whole training state: N steps + save + load + M
steps gives byte-identical weights to N + M steps in one trainer, for every
policy, with momentum and a warm-up cosine schedule; stock TFLM still runs it."""

import os
import subprocess
import sys

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.errors import InvalidArgumentError, InvalidPlanError

import helpers as H

POLICIES = [tflm_train.Full(), tflm_train.StaticTopK(0.5), tflm_train.TinyProp(), tflm_train.TinyPropV2(tau=0.3)]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(41)
    return keras.Sequential([keras.Input((3, 4)), keras.layers.Conv1D(4, 2, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(6, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    x = rng.normal(size=(40, 3, 4)).astype(np.float32)
    return x, (x[:, 0, 0] > 0).astype(np.int64) + (x[:, 1, 1] > 0)


def _convert(model, batch_size, policy):
    schedule = tflm_train.CosineDecay(60, alpha=0.1, warmup_steps=8)
    return tflm_train.convert(model, loss="sparse_categorical_crossentropy", policy=policy, batch_size=batch_size,
                              optimizer=tflm_train.SGD(0.1, momentum=0.9, weight_decay=0.01, schedule=schedule))


def _steps(trainer, x, y, first, last, batch):
    for i in range(first, last):
        trainer.train_step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_save_load_continue_is_byte_identical(model, data, tmp_path, policy, batch):
    x, y = data
    model_bytes = _convert(model, batch, policy)
    whole = tflm_train.MicroTrainer(model_bytes)
    _steps(whole, x, y, 0, 12, batch)
    first = tflm_train.MicroTrainer(model_bytes)
    _steps(first, x, y, 0, 5, batch)
    first.save(tmp_path / "half.tflite")
    second = tflm_train.MicroTrainer(tmp_path / "half.tflite")
    assert second.counters == first.counters and second.ymax == first.ymax
    assert second.learning_rate == first.learning_rate
    _steps(second, x, y, 5, 12, batch)
    assert second.model_bytes == whole.model_bytes  # weights and state alike
    assert second.counters == whole.counters
    # Stock TFLM runs the saved file, with the trained weights.
    np.testing.assert_allclose(H.tflm_predict(second.model_bytes, x), second.predict(x), rtol=1e-5, atol=1e-6)


def test_fit_resumes_epochs_and_shuffling(model, data, tmp_path):
    x, y = data
    model_bytes = _convert(model, 2, tflm_train.TinyPropV2(tau=0.3))
    whole = tflm_train.MicroTrainer(model_bytes, seed=3)
    whole.fit(x, y, epochs=3, batch_size=2, verbose=0)
    part = tflm_train.MicroTrainer(model_bytes, seed=3)
    part.fit(x, y, epochs=1, batch_size=2, verbose=0)
    part.save(tmp_path / "one.tflite")
    resumed = tflm_train.MicroTrainer(tmp_path / "one.tflite", seed=3)
    assert resumed.epochs_trained == 1
    resumed.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert resumed.model_bytes == whole.model_bytes and resumed.epochs_trained == 3


def test_state_survives_a_larger_batch_and_a_policy_override(model, data, tmp_path):
    """fit with a batch larger than planned rebuilds the C++ trainer: the state goes along;
    a policy override at load time keeps the saved Ymax."""
    x, y = data
    model_bytes = _convert(model, 1, tflm_train.TinyProp())
    whole = tflm_train.MicroTrainer(model_bytes)
    part = tflm_train.MicroTrainer(model_bytes)
    for trainer in (whole, part):
        _steps(trainer, x, y, 0, 3, 1)
        trainer.fit(x[:12], y[:12], batch_size=4, shuffle=False, verbose=0)  # rebuilds for batch 4
    part.save(tmp_path / "p.tflite")
    resumed = tflm_train.MicroTrainer(tmp_path / "p.tflite", policy=tflm_train.TinyPropV2(tau=0.0))
    assert resumed.ymax == part.ymax and resumed.counters == part.counters
    whole_v2 = tflm_train.MicroTrainer(whole.model_bytes, policy=tflm_train.TinyPropV2(tau=0.0))
    for trainer in (resumed, whole_v2):
        trainer.fit(x, y, batch_size=4, verbose=0)
    assert resumed.model_bytes == whole_v2.model_bytes


def test_fresh_start_ignores_the_state(model, data, tmp_path):
    x, y = data
    trainer = tflm_train.MicroTrainer(_convert(model, 1, tflm_train.TinyProp()))
    _steps(trainer, x, y, 0, 4, 1)
    trainer.save(tmp_path / "t.tflite")
    fresh = tflm_train.MicroTrainer(tmp_path / "t.tflite", restore_state=False)
    assert fresh.counters["steps"] == 0 and fresh.ymax == [0.0, 0.0, 0.0]
    assert fresh.get_weights()[0].tobytes() == trainer.get_weights()[0].tobytes()


def _state_region(model_bytes, state_bytes):
    """Offset of the state buffer: where the trainer's own state bytes sit in the file."""
    at = model_bytes.find(state_bytes)
    assert at > 0 and model_bytes.find(state_bytes, at + 1) < 0
    return at


def test_corrupt_or_foreign_state_is_refused_clearly(model, data, tmp_path):
    x, y = data
    trainer = tflm_train.MicroTrainer(_convert(model, 1, tflm_train.Full()))
    _steps(trainer, x, y, 0, 3, 1)
    saved = trainer.model_bytes
    at = _state_region(saved, trainer.get_state())
    bad = bytearray(saved)
    bad[at + 4] = 7  # the state's format version
    with pytest.raises(InvalidArgumentError, match="format version 7.*restore_state = false"):
        tflm_train.MicroTrainer(bytes(bad))
    assert tflm_train.MicroTrainer(bytes(bad), restore_state=False).counters["steps"] == 0
    bad = bytearray(saved)
    bad[at + 16] ^= 1  # the parameter count: a state of another model
    with pytest.raises(InvalidArgumentError, match="another model"):
        tflm_train.MicroTrainer(bytes(bad))
    # A state of the right model still refuses NaN momentum.
    bad = bytearray(saved)
    bad[at + len(trainer.get_state()) - 4:at + len(trainer.get_state())] = b"\xff\xff\xff\x7f"
    with pytest.raises(InvalidArgumentError, match="not finite"):
        tflm_train.MicroTrainer(bytes(bad))
    with pytest.raises(InvalidArgumentError, match="another model"):
        other = tflm_train.MicroTrainer(_convert(keras.Sequential([
            keras.Input((3, 4)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]), 1,
            tflm_train.Full()))
        other.set_state(trainer.get_state())


def test_state_size_is_checked_against_the_model(model, tmp_path):
    """A state buffer of the wrong size (a plan edited by hand) is refused at Init."""
    from tflm_train.converter import tflite_graph

    model_bytes = _convert(model, 1, tflm_train.Full())
    graph = tflite_graph.read(model_bytes)
    tflite_graph.add_metadata(graph, "tflm_train_state", bytes(12))
    with pytest.raises(InvalidPlanError, match="re-convert"):
        tflm_train.MicroTrainer(tflite_graph.write(graph))


def test_file_without_room_for_state_still_trains_and_warns(model, data, tmp_path):
    """Files from tflm_train 0.1 have no state buffer: they train, and save says what is lost."""
    from tflm_train.converter import tflite_graph

    graph = tflite_graph.read(_convert(model, 1, tflm_train.Full()))
    graph.metadata = [m for m in graph.metadata if m.name != b"tflm_train_state"]
    old = tflite_graph.write(graph)
    trainer = tflm_train.MicroTrainer(old)
    x, y = data
    _steps(trainer, x, y, 0, 2, 1)
    with pytest.warns(UserWarning, match="re-convert"):
        trainer.save(tmp_path / "old.tflite")
    assert tflm_train.MicroTrainer(tmp_path / "old.tflite").counters["steps"] == 0


def test_old_state_format_gets_one_sentence(model):
    trainer = tflm_train.MicroTrainer(_convert(model, 1, tflm_train.Full()))
    state = bytearray(trainer.get_state())
    state[:4] = b"TTS1"
    with pytest.raises(InvalidArgumentError, match="tflm_train 0.1"):
        trainer.set_state(bytes(state))


def test_cli_train_continues_and_fresh_starts_over(model, data, tmp_path):
    x, y = data
    (tmp_path / "m.tflite").write_bytes(_convert(model, 1, tflm_train.TinyPropV2(tau=0.3)))
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])

    def train(*args):
        r = subprocess.run([sys.executable, "-m", "tflm_train.cli", "train", *args, "--data", "d.npz", "-q"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert "resuming" not in train("m.tflite", "-o", "a.tflite")
    out = train("a.tflite", "-o", "b.tflite", "--plot", "b.png")
    assert "resuming after 1 epochs, 40 steps" in out and (tmp_path / "b.png").stat().st_size > 0
    assert tflm_train.MicroTrainer(tmp_path / "b.tflite").counters["steps"] == 80
    out = train("a.tflite", "-o", "c.tflite", "--fresh")
    assert "resuming" not in out
    assert tflm_train.MicroTrainer(tmp_path / "c.tflite").counters["steps"] == 40
    assert os.path.getsize(tmp_path / "c.tflite") == os.path.getsize(tmp_path / "b.tflite")
