"""Checkpoints in a flash image (docs/checkpoints.md) from the host: MicroTrainer's
save_checkpoint/load_checkpoint write and read the raw region a device's flash holds.
Save, a fresh trainer over the original bytes, load and more steps continue
byte-identically; saves alternate slots with growing sequence numbers; a torn or
corrupt newer slot falls back to the older; another model's checkpoint is refused;
an image is made for a given region size, and one of another size is refused; and
the bytes are the documented layout, checked here with struct and zlib.crc32
(the C++ is the only reader and writer; the power-cut tests are in C++,
micro_kernels/tests/test_checkpoint.cc)."""

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.errors import InvalidArgumentError, StorageError, TrainerError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "checkpoints.md"
HEADER = struct.Struct("<4sIIIIIIIIIQI")  # magic, version, sequence, region, payload, payload CRC, weights,
#                                           state, layers, fingerprint, steps, header CRC
PAYLOAD_AT = 256


def _mlp(hidden, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


def _convert(model, policy, batch_size=1):
    schedule = tflm_train.CosineDecay(60, alpha=0.1, warmup_steps=8)
    return tflm_train.convert(model, loss="sparse_categorical_crossentropy", policy=policy, batch_size=batch_size,
                              optimizer=tflm_train.SGD(0.1, momentum=0.9, weight_decay=0.01, schedule=schedule))


@pytest.fixture(scope="module")
def model_bytes():
    return _convert(_mlp(5, 3), tflm_train.TinyPropV2(tau=0.3))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(48, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def _steps(trainer, x, y, first, last, batch=1):
    for i in range(first, last):
        trainer.train_step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])


def _slots(image):
    """The two slots of an image: its halves."""
    half = len(image) // 2
    return image[:half], image[half:]


def _header(slot):
    fields = HEADER.unpack(slot[:HEADER.size])
    return dict(zip(["magic", "version", "sequence", "region_bytes", "payload_bytes", "payload_crc", "weight_bytes",
                     "state_bytes", "layers", "fingerprint", "steps", "header_crc"], fields))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("policy", [tflm_train.Full(), tflm_train.TinyPropV2(tau=0.3)], ids=lambda p: p.name)
def test_save_reboot_load_continues_byte_identically(data, tmp_path, policy, batch):
    x, y = data
    original = _convert(_mlp(5, 3), policy, batch)
    whole = tflm_train.MicroTrainer(original)
    _steps(whole, x, y, 0, 14, batch)
    first = tflm_train.MicroTrainer(original)
    _steps(first, x, y, 0, 6, batch)
    first.save_checkpoint(tmp_path / "flash.bin")
    second = tflm_train.MicroTrainer(original)  # the untrained bytes, as after a reboot
    assert second.load_checkpoint(tmp_path / "flash.bin") is True
    assert second.counters == first.counters and second.ymax == first.ymax
    assert second.learning_rate == first.learning_rate and second.get_state() == first.get_state()
    _steps(second, x, y, 6, 14, batch)
    assert second.model_bytes == whole.model_bytes  # weights and state alike
    assert second.counters == whole.counters


def test_fit_resumes_from_a_checkpoint(model_bytes, data, tmp_path):
    x, y = data
    whole = tflm_train.MicroTrainer(model_bytes, seed=5)
    whole.fit(x, y, epochs=3, batch_size=1, verbose=0)
    part = tflm_train.MicroTrainer(model_bytes, seed=5)
    part.fit(x, y, epochs=1, batch_size=1, verbose=0)
    part.save_checkpoint(tmp_path / "flash.bin", page_size=256, program_size=16)
    resumed = tflm_train.MicroTrainer(model_bytes, seed=5)
    assert resumed.load_checkpoint(tmp_path / "flash.bin", page_size=256, program_size=16)
    assert resumed.epochs_trained == 1
    resumed.fit(x, y, epochs=2, batch_size=1, verbose=0)
    assert resumed.model_bytes == whole.model_bytes


def test_image_has_the_documented_layout(model_bytes, data, tmp_path):
    x, y = data
    trainer = tflm_train.MicroTrainer(model_bytes)
    path = tmp_path / "flash.bin"
    page = 512
    expected = []
    for save in range(3):
        _steps(trainer, x, y, save * 2, save * 2 + 2)
        trainer.save_checkpoint(path, page_size=page, program_size=8)
        weights = b"".join(np.asarray(w, "<f4").tobytes() for w in trainer.get_weights())
        expected.append((weights, trainer.get_state(), int(trainer.counters["steps"])))
        image = path.read_bytes()
        size = trainer.checkpoint_storage_bytes(page)
        assert len(image) == size and size % (2 * page) == 0
        # A slot: 52-byte header, erased up to 256, the payload, erased after.
        assert size // 2 == -(-(PAYLOAD_AT + len(weights) + len(trainer.get_state())) // page) * page
        slot = _slots(image)[save % 2]  # saves alternate: 0, 1, 0
        h = _header(slot)
        assert h["magic"] == b"TTCK" and h["version"] == 1 and h["sequence"] == save + 1
        assert HEADER.size == 52 and h["header_crc"] == zlib.crc32(slot[:48])
        assert h["region_bytes"] == len(image)
        assert h["weight_bytes"] == len(weights) and h["state_bytes"] == len(trainer.get_state())
        assert h["payload_bytes"] == h["weight_bytes"] + h["state_bytes"]
        assert h["layers"] == 2 and h["steps"] == trainer.counters["steps"]
        payload = slot[PAYLOAD_AT:PAYLOAD_AT + h["payload_bytes"]]
        assert h["payload_crc"] == zlib.crc32(payload)
        assert payload == weights + trainer.get_state()  # the weights as in the model, then SaveState's bytes
        assert slot[HEADER.size:PAYLOAD_AT] == b"\xff" * (PAYLOAD_AT - HEADER.size)
        assert slot[PAYLOAD_AT + h["payload_bytes"]:] == b"\xff" * (len(slot) - PAYLOAD_AT - h["payload_bytes"])
    # After three saves slot 1 still holds the second; the fingerprint is the model's, not the save's.
    older = _header(_slots(image)[1])
    assert older["sequence"] == 2 and older["steps"] == expected[1][2]
    assert _slots(image)[1][PAYLOAD_AT:PAYLOAD_AT + older["payload_bytes"]] == expected[1][0] + expected[1][1]
    assert older["fingerprint"] == _header(_slots(image)[0])["fingerprint"]
    assert not list(tmp_path.glob("*.tmp"))  # the file was replaced atomically, no leftovers


def _two_checkpoints(model_bytes, data, path):
    """Saves twice (slot 0, then slot 1); returns the trainers' states at each save."""
    x, y = data
    trainer = tflm_train.MicroTrainer(model_bytes)
    saved = []
    for first in (0, 3):
        _steps(trainer, x, y, first, first + 3)
        trainer.save_checkpoint(path)
        saved.append((trainer.get_state(), [w.copy() for w in trainer.get_weights()]))
    return saved


def _loads(model_bytes, path):
    trainer = tflm_train.MicroTrainer(model_bytes)
    loaded = trainer.load_checkpoint(path)
    return loaded, trainer.get_state(), trainer.get_weights()


def _same(got, want):
    loaded, state, weights = got
    return loaded and state == want[0] and all(a.tobytes() == b.tobytes() for a, b in zip(weights, want[1]))


@pytest.mark.parametrize("damage", ["payload bit", "torn payload", "torn header", "header bit"])
def test_damaged_newer_slot_falls_back_to_the_older(model_bytes, data, tmp_path, damage):
    path = tmp_path / "flash.bin"
    older, newer = _two_checkpoints(model_bytes, data, path)
    assert _same(_loads(model_bytes, path), newer)
    image = bytearray(path.read_bytes())
    half = len(image) // 2
    payload = _header(image[half:])["payload_bytes"]
    if damage == "payload bit":
        image[half + PAYLOAD_AT + payload // 2] ^= 0x10
    elif damage == "torn payload":  # as a write cut off mid-way would leave it (erased after the cut)
        image[half + PAYLOAD_AT + payload - 7:half + PAYLOAD_AT + payload] = b"\xff" * 7
    elif damage == "torn header":
        image[half + 20:half + HEADER.size] = b"\xff" * (HEADER.size - 20)
    else:
        image[half + 9] ^= 0x01  # the sequence number: the header CRC no longer matches
    path.write_bytes(bytes(image))
    assert _same(_loads(model_bytes, path), older)
    # The next save replaces the damaged slot, not the good one.
    trainer = tflm_train.MicroTrainer(model_bytes)
    trainer.save_checkpoint(path)
    image = path.read_bytes()
    assert _header(image[:half])["sequence"] == 1 and _header(image[half:])["sequence"] == 2  # after the kept slot
    assert _same(_loads(model_bytes, path), (trainer.get_state(), trainer.get_weights()))


def test_nothing_to_load(model_bytes, tmp_path):
    trainer = tflm_train.MicroTrainer(model_bytes)
    before = trainer.model_bytes
    erased = tmp_path / "erased.bin"
    erased.write_bytes(b"\xff" * trainer.checkpoint_storage_bytes())
    assert trainer.load_checkpoint(erased) is False and trainer.model_bytes == before
    with pytest.raises(FileNotFoundError):
        trainer.load_checkpoint(tmp_path / "missing.bin")


def test_another_models_checkpoint_is_refused(model_bytes, data, tmp_path):
    x, y = data
    path = tmp_path / "flash.bin"
    other = tflm_train.MicroTrainer(_convert(_mlp(4, 3), tflm_train.Full()))
    _steps(other, x, y, 0, 2)
    other.save_checkpoint(path)
    trainer = tflm_train.MicroTrainer(model_bytes)
    before = trainer.model_bytes
    with pytest.raises(InvalidArgumentError, match=r"flash\.bin: the checkpoint in slot 0 is of another model: "
                                                   r"43 parameters, 2 layers, 272 state bytes; this one has 53, 2, 312"):
        trainer.load_checkpoint(path)
    assert trainer.model_bytes == before
    # Its own save goes into the other slot; from then on it loads. Each model loads its
    # own newest checkpoint, until a second save replaces the other model's.
    trainer.save_checkpoint(path)
    assert tflm_train.MicroTrainer(model_bytes).load_checkpoint(path)
    other_again = tflm_train.MicroTrainer(_convert(_mlp(4, 3), tflm_train.Full()))
    assert other_again.load_checkpoint(path) and other_again.get_state() == other.get_state()
    trainer.save_checkpoint(path)
    with pytest.raises(InvalidArgumentError, match="another model"):
        other_again.load_checkpoint(path)


def test_region_size_and_geometry_are_checked(model_bytes, tmp_path):
    trainer = tflm_train.MicroTrainer(model_bytes)
    path = tmp_path / "flash.bin"
    trainer.save_checkpoint(path)
    size = trainer.checkpoint_storage_bytes()
    assert size == 2 * 4096 and path.stat().st_size == size
    path.write_bytes(path.read_bytes()[:size - 100])  # a truncated file is not a region
    with pytest.raises(InvalidArgumentError, match=f"{size - 100} bytes does not fit: this model's checkpoints "
                                                   f"need {size}"):
        trainer.load_checkpoint(path)
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        trainer.save_checkpoint(path)
    assert path.stat().st_size == size - 100  # a failed save leaves the file as it was
    with pytest.raises(InvalidArgumentError, match="page_size 4096 and program_size 512"):
        trainer.save_checkpoint(tmp_path / "new.bin", program_size=512)
    assert not (tmp_path / "new.bin").exists()
    for bad in (0, -4, 3.5, True, 2 ** 32):
        with pytest.raises(InvalidArgumentError, match="page_size"):
            trainer.save_checkpoint(tmp_path / "new.bin", page_size=bad)
    with pytest.raises(InvalidArgumentError, match="power of two"):
        trainer.save_checkpoint(tmp_path / "new.bin", page_size=3000)
    with pytest.raises(InvalidArgumentError, match="power of two"):
        trainer.checkpoint_storage_bytes(3000)
    # A larger region (as a device may have) works, whatever the program size that wrote it.
    big = tmp_path / "big.bin"
    big.write_bytes(b"\xff" * (4 * size))
    trainer.save_checkpoint(big, program_size=256)
    assert tflm_train.MicroTrainer(model_bytes).load_checkpoint(big, program_size=1)
    assert issubclass(StorageError, TrainerError) and issubclass(StorageError, OSError)
    assert StorageError.status == "StorageError"


def test_image_for_a_device_region(model_bytes, data, tmp_path):
    x, y = data
    trainer = tflm_train.MicroTrainer(model_bytes)
    _steps(trainer, x, y, 0, 2)
    size = trainer.checkpoint_storage_bytes()
    # An image for a device's 16 KiB region: exactly that size, and it says so in every header.
    device = tmp_path / "device.bin"
    trainer.save_checkpoint(device, region_size=2 * size)
    trainer.save_checkpoint(device)  # an existing file is its region: the size stays
    image = device.read_bytes()
    assert len(image) == 2 * size
    assert [_header(slot)["region_bytes"] for slot in _slots(image)] == [2 * size, 2 * size]
    assert _same(_loads(model_bytes, device), (trainer.get_state(), trainer.get_weights()))
    # The mistake it prevents: a minimum-size image programmed into the larger region. Its
    # slot 1 is not where the device looks, so slot 0 (the older) would load; it is refused.
    small = tmp_path / "small.bin"
    trainer.save_checkpoint(small)
    trainer.save_checkpoint(small)
    (tmp_path / "programmed.bin").write_bytes(small.read_bytes() + b"\xff" * size)
    fresh = tflm_train.MicroTrainer(model_bytes)
    with pytest.raises(InvalidArgumentError, match=f"the checkpoint in slot 0 was saved in a region of {size} bytes, "
                                                   f"this storage has {2 * size}"):
        fresh.load_checkpoint(tmp_path / "programmed.bin")
    assert fresh.model_bytes == tflm_train.MicroTrainer(model_bytes).model_bytes
    with pytest.raises(InvalidArgumentError, match=f"the file is a region of {2 * size} bytes, not region_size {size}"):
        trainer.save_checkpoint(device, region_size=size)
    assert device.read_bytes() == image
    for bad in (0, True, 2 ** 32, 3.5):
        with pytest.raises(InvalidArgumentError, match="region_size"):
            trainer.save_checkpoint(tmp_path / "new.bin", region_size=bad)
    with pytest.raises(InvalidArgumentError, match=f"storage of {size + 4096} bytes does not fit"):
        trainer.save_checkpoint(tmp_path / "new.bin", region_size=size + 4096)  # not an even number of pages
    assert not (tmp_path / "new.bin").exists()
    with pytest.raises(InvalidArgumentError, match="4 GiB or more"):
        trainer.checkpoint_storage_bytes(2 ** 31)


def test_docs_example_runs(model_bytes, data, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.tflite").write_bytes(model_bytes)
    x, y = data
    exec(compile(blocks[0], str(DOCS), "exec"), {"tflm_train": tflm_train, "x": x, "y": y})
    assert (tmp_path / "flash.bin").stat().st_size == tflm_train.MicroTrainer(model_bytes).checkpoint_storage_bytes()
    assert sorted(os.listdir(tmp_path)) == ["flash.bin", "model.tflite"]
