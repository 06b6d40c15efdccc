"""Plots of training runs: the learning curves of one `MicroTrainer.fit` and the
accuracy, loss and effort figures of `compare`.

Figures are drawn on matplotlib's Agg canvas without pyplot, so plotting never
switches the user's backend and importing tflm_train does not import matplotlib.
Every epoch axis has integer ticks; legends sit outside the axes.
"""

import numpy as np

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def smooth(values, weight=None):
    """Exponential moving average of `values`, bias-corrected.

    `s_t = weight * s_(t-1) + (1 - weight) * x_t` from `s_0 = 0`, divided by
    `1 - weight**t` so the first points are not pulled towards zero.
    `weight=None` uses `1 - 20 / len(values)` (averaging over about the last 5%
    of the series; no smoothing up to 20 points). Returns a float array of the
    same length as `values`.
    """
    values = np.asarray(values, dtype=np.float64)
    if weight is None:
        weight = max(0.0, 1.0 - 20.0 / max(len(values), 1))
    out = np.empty_like(values)
    s = 0.0
    for t, v in enumerate(values, start=1):
        s = weight * s + (1.0 - weight) * v
        out[t - 1] = s / (1.0 - weight**t)
    return out


def epoch_axis(ax, label="epoch"):
    """Labels the x axis of `ax` as epochs, with integer ticks only."""
    from matplotlib.ticker import MaxNLocator

    # min_n_ticks=1: one epoch in view still gets the integer tick, not 0.96, 0.98, ...
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel(label)


def save_figure(fig, path):
    """Writes `fig` as a PNG, cropped to its contents (legends outside the axes included)."""
    fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_history(history, path, title=None):
    """Writes the learning curves of one `MicroTrainer.fit` run to `path` (PNG).

    Panels: the per-batch training loss (faint) with its `smooth`ed curve, then
    loss and, if logged, accuracy per epoch (with validation when present).
    Works with a History without `batch_loss` (per-epoch panels only).
    Returns the matplotlib Figure.
    """
    logs = history.history
    batch_loss = list(getattr(history, "batch_loss", []))
    batch_epoch = list(getattr(history, "batch_epoch", []))
    epochs = np.asarray(history.epoch) + 1
    metrics = [key for key in ("loss", "accuracy") if logs.get(key)]
    if not (metrics or batch_loss):
        raise ValueError("the history holds no epoch to plot")
    fig, axes = _figure(len(metrics) + bool(batch_loss), panel_width=4.2)
    if batch_loss:
        ax = axes.pop(0)
        x = _step_positions(batch_epoch)
        smoothed = smooth(batch_loss)
        ax.plot(x, batch_loss, color="C0", alpha=0.25, lw=0.7, label="per batch")
        ax.plot(x, smoothed, color="C0", lw=2.0, label="smoothed")
        # Single-sample losses spike far above the trend; clip them to keep the trend readable.
        top = max(np.percentile(batch_loss, 99), smoothed.max())
        bottom = min(np.min(batch_loss), smoothed.min())
        pad = 0.05 * ((top - bottom) or max(abs(top), 1.0))  # a constant loss still gets a range
        ax.set_ylim(bottom - pad, top + pad)
        _step_axis(ax, x)
        ax.set_ylabel("training loss")
        _legend_above(ax)
    for ax, key in zip(axes, metrics):
        ax.plot(epochs, logs[key], marker="o", label="training")
        if logs.get(f"val_{key}"):
            ax.plot(epochs, logs[f"val_{key}"], marker="s", label="validation")
            _legend_above(ax)
        epoch_axis(ax)
        ax.set_ylabel(key)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return fig


def compare_figures(result):
    """The figures of a `compare.CompareResult`, by file stem.

    "accuracy": test accuracy per epoch; "loss": training loss per epoch beside
    the per-batch loss smoothed; "effort": MACs relative to full backprop per
    epoch, as bars. One legend per figure, right of the axes.
    """
    methods = result.methods
    figures = {}

    fig, (ax,) = _figure(1, panel_width=6.5)
    for i, m in enumerate(methods):
        ax.plot(range(1, len(m.accuracy) + 1), m.accuracy, label=m.name, **_method_style(i))
    epoch_axis(ax)
    ax.set_ylabel("test accuracy")
    _legend_right(fig, ax)
    figures["accuracy"] = fig

    fig, (ax, *steps) = _figure(1 + any(m.step_loss for m in methods), panel_width=4.8)
    for i, m in enumerate(methods):
        ax.plot(range(1, len(m.loss) + 1), m.loss, label=m.name, **_method_style(i))
        if m.step_loss:
            # Every method runs the same batches per epoch, so batches spread evenly over epochs.
            x = _step_positions(np.arange(len(m.step_loss)) * len(m.loss) // len(m.step_loss))
            steps[0].plot(x, smooth(m.step_loss), lw=1.6, **_method_style(i, markers=False))
            _step_axis(steps[0], x)
    if steps:
        steps[0].set_ylabel("training loss per batch (smoothed)")
    epoch_axis(ax)
    ax.set_ylabel("training loss (epoch mean)")
    _legend_right(fig, ax)
    figures["loss"] = fig

    fig, (ax,) = _figure(1, panel_width=7.0)
    epochs = len(methods[0].loss)
    width = 0.8 / len(methods)
    full = result.full_forward_macs + result.full_backward_macs
    for i, m in enumerate(methods):
        effort = [(f + b) / full for f, b in zip(m.forward_macs, m.backward_macs)]
        ax.bar(np.arange(1, epochs + 1) + (i - (len(methods) - 1) / 2) * width, effort, width, label=m.name)
    epoch_axis(ax)
    ax.set_ylabel("MACs / full backprop (forward+backward)")
    ax.grid(axis="x", visible=False)
    _legend_right(fig, ax)
    figures["effort"] = fig
    return figures


def _figure(panels, panel_width):
    """A Figure on the Agg canvas with `panels` axes side by side; returns (fig, list of axes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel_width * panels, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def _step_positions(batch_epoch):
    """x of each batch in epochs: batch j of epoch e (0-based) ends at e + (j + 1) / k, with k
    the batches of a full epoch, so per-epoch points at e + 1 line up with the epoch's end
    and an epoch cut short (early stopping) ends early."""
    batch_epoch = np.asarray(batch_epoch)
    epochs, counts = np.unique(batch_epoch, return_counts=True)
    x = np.empty(len(batch_epoch))
    for e in epochs:
        index = np.flatnonzero(batch_epoch == e)
        x[index] = e + np.arange(1, len(index) + 1) / counts.max()
    return x


def _step_axis(ax, x):
    """An epoch axis over whole epochs for per-batch positions `x`."""
    ax.set_xlim(np.floor(x[0]), np.ceil(x[-1]))
    epoch_axis(ax)


def _method_style(i, markers=True):
    # Hollow markers of distinct shapes and every other line dashed keep coinciding methods
    # (Keras fit and C++ Full) both visible.
    style = dict(color=f"C{i}", linestyle="--" if i % 2 else "-")
    if markers:
        style.update(marker=_MARKERS[i % len(_MARKERS)], markerfacecolor="none", markeredgewidth=1.5)
    return style


def _legend_above(ax):
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, frameon=False, borderaxespad=0.0)


def _legend_right(fig, ax):
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", frameon=False)
