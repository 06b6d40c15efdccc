"""tflm_train.plots: PNGs written, integer epoch ticks, legends clear of the data, smoothing."""

import types

import numpy as np
import pytest
from matplotlib.transforms import Bbox

from tflm_train import plots
from tflm_train.compare import CompareResult, MethodResult

PNG = b"\x89PNG\r\n\x1a\n"


def fake_history(epochs=3, steps=50, batches=True, validation=True):
    """A History as MicroTrainer.fit returns it, with a noisy decaying loss."""
    rng = np.random.default_rng(0)
    t = np.arange(epochs * steps)
    loss = np.abs(np.exp(-t / 60) + 0.2 + rng.normal(0, 0.2, len(t)))
    logs = {"loss": [float(loss[e * steps:(e + 1) * steps].mean()) for e in range(epochs)],
            "accuracy": list(np.linspace(0.5, 0.9, epochs))}
    if validation:
        logs.update(val_loss=[v * 1.1 for v in logs["loss"]], val_accuracy=list(np.linspace(0.4, 0.8, epochs)))
    h = types.SimpleNamespace(history=logs, epoch=list(range(epochs)))
    if batches:
        h.batch_loss, h.batch_epoch = list(loss), list(np.repeat(np.arange(epochs), steps))
    return h


def fake_compare(epochs=3, steps=40, cpp_steps=True):
    rng = np.random.default_rng(1)
    methods = []
    for i, name in enumerate(["keras fit (full)", "C++ Full()", "C++ TinyPropV2()"]):
        step_loss = np.exp(-np.arange(epochs * steps) / 50) + rng.random(epochs * steps)
        methods.append(MethodResult(name, accuracy=list(np.linspace(0.5, 0.9, epochs) - 0.05 * i),
                                    loss=list(np.linspace(1.0, 0.3, epochs) + 0.1 * i),
                                    forward_macs=[1000] * epochs, backward_macs=[2000 - 600 * i] * epochs,
                                    skipped=[0.1 * i] * epochs,
                                    step_loss=list(step_loss) if i == 0 or cpp_steps else []))
    return CompareResult(methods, 1000, 2000)


def check_figure(fig):
    """Epoch axes tick integers only; no legend overlaps any axes' data area."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    epoch_axes = [ax for ax in fig.axes if ax.get_xlabel() == "epoch"]
    assert epoch_axes
    for ax in epoch_axes:
        low, high = ax.get_xlim()
        labels = [t.get_text() for t, v in zip(ax.get_xticklabels(), ax.get_xticks()) if low <= v <= high]
        assert labels and all(text.replace("\u2212", "-").isdigit() for text in labels), labels
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends
    for legend in legends:
        for ax in fig.axes:
            overlap = Bbox.intersection(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
            assert overlap is None or overlap.width * overlap.height == 0, (legend, ax.get_ylabel())


def check_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG


def test_smooth():
    np.testing.assert_allclose(plots.smooth([2.5] * 300), 2.5)
    np.testing.assert_allclose(plots.smooth([2.5] * 3, weight=0.9), 2.5)
    assert len(plots.smooth([])) == 0
    assert list(plots.smooth([4.0])) == [4.0]
    noisy = np.random.default_rng(0).normal(1.0, 0.5, 1000)
    smoothed = plots.smooth(noisy)
    assert smoothed.shape == noisy.shape and smoothed[100:].std() < noisy.std() / 3


@pytest.mark.parametrize("batches,validation,epochs", [(True, True, 3), (False, True, 3), (True, False, 1),
                                                       (True, True, 12)])
def test_plot_history(tmp_path, batches, validation, epochs):
    path = tmp_path / "curves.png"
    fig = plots.plot_history(fake_history(epochs, batches=batches, validation=validation), path, title="run")
    check_png(path)
    assert len(fig.axes) == 2 + batches
    check_figure(fig)


def test_plot_history_of_a_real_fit(tmp_path):
    import keras

    import tflm_train

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    trainer = tflm_train.MicroTrainer(tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                                         optimizer=tflm_train.SGD(0.1)))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    history = trainer.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y), verbose=0)
    fig = plots.plot_history(history, tmp_path / "fit.png")
    check_png(tmp_path / "fit.png")
    assert len(fig.axes) == 2 + bool(getattr(history, "batch_loss", []))
    check_figure(fig)


@pytest.mark.parametrize("cpp_steps", [True, False])
def test_compare_plots(tmp_path, cpp_steps):
    result = fake_compare(cpp_steps=cpp_steps)
    paths = result.save_plots(tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in map(str, paths)] == ["accuracy.png", "loss.png", "effort.png"]
    for path in paths:
        check_png(path)
    figures = plots.compare_figures(result)
    assert len(figures["loss"].axes) == 2  # per epoch, and per batch smoothed
    for fig in figures.values():
        check_figure(fig)
    assert '"step_loss"' in result.to_json()


def test_epoch_ticks_of_a_single_epoch():
    fig = plots.compare_figures(fake_compare(epochs=1))["accuracy"]
    check_figure(fig)
