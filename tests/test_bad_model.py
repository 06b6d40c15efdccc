"""Bad model files get a tflm_train error (never a crash): truncated files, files that
are not FlatBuffers, every bit of a trainable file flipped (in a child process, so a
crash fails the test instead of the run), a plain .tflite without a plan, and plans
of another version or with the wrong identifier. (Bad data: tests/test_bad_input.py;
hand-edited files of a small CNN: tests/test_edited_files.py.)"""

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorflow as tf

import tflm_train
from tflm_train.errors import InvalidModelError, MissingPlanError, UnsupportedPlanVersionError

import helpers as H
from helpers import keras_model, model_bytes  # noqa: F401 (module fixtures: the shared small model)


# --- bad model bytes ---------------------------------------------------------------------------

@pytest.mark.parametrize("keep", [0, 4, 7, 8, 16, 64, 200, "half", -200, -64, -16, -8, -4, -1])
def test_truncated_model_is_invalid(model_bytes, keep):
    n = len(model_bytes) // 2 if keep == "half" else keep % len(model_bytes)
    assert n < len(model_bytes)
    with pytest.raises(InvalidModelError):
        tflm_train.MicroTrainer(model_bytes[:n])


def test_truncated_model_is_rejected_by_tflite_too(model_bytes):
    """The reference for "truncated": TFLite's own verifier rejects the file cut
    short by a single byte."""
    with pytest.raises(ValueError):
        tf.lite.Interpreter(model_content=model_bytes[:-1])


def test_not_a_flatbuffer_is_invalid():
    for junk in (b"", b"\x00" * 64, b"TFL3" * 100, os.urandom(4096)):
        with pytest.raises(InvalidModelError):
            tflm_train.MicroTrainer(junk)
    with pytest.raises(TypeError):
        tflm_train.MicroTrainer([1, 2, 3])


def test_int_is_not_a_model():
    """model_bytes is bytes or a path; an int must be a TypeError, not be opened as
    a file descriptor (MicroTrainer(0) would read, then close, stdin)."""
    with pytest.raises(TypeError):
        tflm_train.MicroTrainer(987654)


_FUZZ_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tflm_train
    from tflm_train.errors import TrainerError

    base = open(sys.argv[1], "rb").read()
    cases = json.load(open(sys.argv[2]))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    for case_id, flips in cases:
        print(json.dumps(["start", case_id]), flush=True)
        b = bytearray(base)
        for offset, mask in flips:
            b[offset] ^= mask
        try:
            t = tflm_train.MicroTrainer(bytes(b))
            t.predict(x)
            t.train_step(x[:1], y[:1])
            t.train_step(x, y)
            t.evaluate(x, y)
            tflm_train.read_model_info(t.model_bytes)
            outcome = "ok"
        except (TrainerError, ValueError) as e:
            outcome = "raised:" + type(e).__name__
        except Exception as e:  # anything else is a bug
            outcome = "other:" + type(e).__name__ + ":" + str(e)[:200]
        print(json.dumps(["done", case_id, outcome]), flush=True)
    print(json.dumps(["finished"]), flush=True)
""")


def test_bit_flipped_models_never_crash(model_bytes, tmp_path):
    """Every byte of the file flipped (one bit, then all bits), plus random
    multi-byte corruption. Each variant must raise a tflm_train error (or
    ValueError) or, where the flip only hit weight data or fields the trainer does
    not use, keep working. Runs in a child process so a crash fails this test
    instead of killing the test run."""
    cases = []
    for offset in range(len(model_bytes)):
        cases.append([f"bit{offset}", [[offset, 1 << (offset % 8)]]])
        cases.append([f"byte{offset}", [[offset, 0xFF]]])
    rng = np.random.default_rng(33)
    for i in range(300):
        offsets = rng.choice(len(model_bytes), size=3, replace=False)
        cases.append([f"multi{i}", [[int(o), int(rng.integers(1, 256))] for o in offsets]])
    (tmp_path / "model.tflite").write_bytes(model_bytes)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "child.py").write_text(_FUZZ_CHILD)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "child.py", "model.tflite", "cases.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]
    started = [line[1] for line in lines if line[0] == "start"]
    flips = dict(cases)
    assert proc.returncode == 0, (f"child died with code {proc.returncode} on case {started[-1] if started else None} "
                                  f"(flips {flips.get(started[-1]) if started else None}); "
                                  f"stderr tail: {proc.stderr[-2000:]}")
    assert lines[-1] == ["finished"]
    outcomes = {line[1]: line[2] for line in lines if line[0] == "done"}
    assert len(outcomes) == len(cases)
    others = {k: (flips[k], v) for k, v in outcomes.items() if v.startswith("other:")}
    assert not others, f"{len(others)} flips raised an unexpected exception type: {list(others.items())[:10]}"
    # Not vacuous: many flips are detected, and flips of weight data keep working.
    raised = sum(v.startswith("raised:") for v in outcomes.values())
    assert raised > len(cases) // 10
    assert sum(v == "ok" for v in outcomes.values()) > len(cases) // 10


def test_plain_tflite_without_plan_is_missing_plan(keras_model):
    plain = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    with pytest.raises(MissingPlanError) as info:
        tflm_train.MicroTrainer(plain)
    assert "tflm_train.convert" in str(info.value)
    assert isinstance(info.value, InvalidModelError)


def _patch_plan(model_bytes, patch):
    """Applies patch(raw_plan: bytearray) to the plan inside the model bytes (same
    length, so every offset stays valid)."""
    raw = H.plan_bytes(model_bytes)
    start = model_bytes.find(raw)
    assert start > 0 and model_bytes.find(raw, start + 1) < 0
    edited = bytearray(raw)
    patch(edited)
    return model_bytes[:start] + bytes(edited) + model_bytes[start + len(raw):]


def _with_version(model_bytes, version):
    def patch(raw):
        struct.pack_into("<I", raw, H.plan_field_position(raw, 0), version)  # `version` is field 0
    return _patch_plan(model_bytes, patch)


@pytest.mark.parametrize("version", [0, 1, 4, 7, 0xFFFFFFFF])
def test_unknown_plan_version_is_refused(model_bytes, version):
    assert tflm_train.read_model_info(model_bytes).version == 3
    patched = _with_version(model_bytes, version)
    assert len(patched) == len(model_bytes)
    with pytest.raises(UnsupportedPlanVersionError) as info:
        tflm_train.MicroTrainer(patched)
    assert str(version) in str(info.value)
    # Files from tflm_train 0.1 (version 1) are told to re-convert.
    assert ("re-convert" in str(info.value)) == (version < 2)
    # The patch touched nothing but the version.
    assert _with_version(patched, 3) == model_bytes
    tflm_train.MicroTrainer(_with_version(patched, 3))


def test_version_2_plan_reads_without_dense_output(keras_model):
    """A version 2 plan (before Policy.dense_output existed: the field is absent) still
    trains, as version 2 did: no exemption for the output layer."""
    from tflm_train.converter import plan_writer

    policy = tflm_train.StaticTopK(0.3, dense_output=False)   # the field at its schema default: not written
    v3 = tflm_train.convert(keras_model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.1),
                            policy=policy)
    v2 = _with_version(v3, 2)
    assert tflm_train.read_model_info(v2).version == 2
    got = tflm_train.read_model_info(v2).policy
    assert isinstance(got, tflm_train.StaticTopK) and got.dense_output is False
    dense = tflm_train.convert(keras_model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.1),
                               policy=tflm_train.StaticTopK(0.3))
    assert len(dense) > len(v3) and tflm_train.read_model_info(dense).policy.dense_output
    assert plan_writer.PLAN_VERSION == 3


def test_plan_built_with_another_version_is_refused(keras_model, monkeypatch):
    """The converter's own writer with a bumped PLAN_VERSION: the C++ measuring
    step inside convert() already refuses the plan."""
    from tflm_train.converter import plan_writer

    monkeypatch.setattr(plan_writer, "PLAN_VERSION", 4)
    with pytest.raises(tflm_train.ConversionError, match="version 4"):
        tflm_train.convert(keras_model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.1))


def test_plan_with_wrong_identifier_is_invalid(model_bytes):
    def patch(raw):
        assert bytes(raw[4:8]) == b"TTPL"
        raw[4:8] = b"XXXX"
    with pytest.raises(InvalidModelError):
        tflm_train.MicroTrainer(_patch_plan(model_bytes, patch))
