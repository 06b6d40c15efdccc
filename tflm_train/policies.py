"""Sparsity policies: which outputs of each trainable layer get a backward pass.

The math is docs/algorithm.md's; the C++ trainer runs it. A policy is stored in the
plan at conversion (`convert(..., policy=...)`) and can be overridden per
trainer (`MicroTrainer(model, policy=...)`).
"""

import math
import numbers
from dataclasses import asdict, dataclass, field

_KINDS = {"Full": 0, "StaticTopK": 1, "TinyProp": 2, "TinyPropV2": 3, "LastLayers": 4, "BiasOnly": 5,
          "SparseUpdate": 6, "TinyTrain": 7}
MAX_LAYERS = 64  # the C++ trainer's kMaxTrainableLayers
POLICY_TYPES = ("Full(), StaticTopK(...), TinyProp(...), TinyPropV2(...), LastLayers(n), BiasOnly(), "
                "SparseUpdate(...) or TinyTrain(...)")
# The sparse policies' dense_output default, chosen on validation data (docs/algorithm.md).
DENSE_OUTPUT = True


def _check_bool(value):
    if not isinstance(value, bool):
        raise TypeError(f"dense_output must be True or False, got {value!r}")


class Policy:
    """Base class of the policies: the sparse ones (Full, StaticTopK, TinyProp,
    TinyPropV2) and the baselines (LastLayers, BiasOnly, SparseUpdate, TinyTrain)."""

    def to_dict(self, num_layers=None):
        """All parameters, as the C++ trainer takes them (defaults for unused ones).
        num_layers: the model's trainable layers, needed only by a SparseUpdate that
        names layers by non-negative index."""
        values = dict(ratio=1.0, s_min=0.1, s_max=0.9, zeta=0.5, ymax_decay=1.0,
                      d_min=0.0, d_max=1.0, beta=1.0, tau=0.5, dense_output=False, budget=0.0,
                      budget_rate=0.01, budget_gain=0.05, last_layers=1, bias_layers=0, weight_ratios=[],
                      samples=10, mac_budget=0.1, memory_budget=0)
        values.update(self._fields(num_layers))
        if values["budget"] is None:
            values["budget"] = 0.0
        if values["memory_budget"] is None:
            values["memory_budget"] = 0
        values["kind"] = _KINDS[type(self).__name__]
        return values

    def _fields(self, num_layers):
        return asdict(self)

    def to_params(self, num_layers=None):
        """The parameters as the compiled trainer takes them (a typed record)."""
        from . import _core

        params = _core.PolicyParams()
        for key, value in self.to_dict(num_layers).items():
            setattr(params, key, value)
        return params

    @property
    def needs_layer_count(self):
        """True when to_dict needs the model's number of trainable layers."""
        return False

    @property
    def name(self):
        return type(self).__name__


@dataclass(frozen=True)
class Full(Policy):
    """Plain backprop: every output of every layer (the baseline)."""


@dataclass(frozen=True)
class StaticTopK(Policy):
    """meProp: keep the round(ratio * n) largest errors of each layer.

    Args:
      ratio: the kept fraction of each layer's errors, in (0, 1].
      dense_output: when True, the last trainable layer keeps all its errors
        (k = n) if it feeds the final softmax of a cross-entropy loss directly
        (docs/algorithm.md, "Dense output layer"). False is the papers' behaviour.
    """

    ratio: float = 0.5
    dense_output: bool = field(default=DENSE_OUTPUT, kw_only=True)

    def __post_init__(self):
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio!r}")
        _check_bool(self.dense_output)


@dataclass(frozen=True)
class TinyProp(Policy):
    """TinyProp: a per-sample, per-layer ratio from the layer's error (docs/algorithm.md).

    Args:
      s_min, s_max: the kept ratio at zero error and at the largest error seen.
      zeta: damping per layer counted from the output, in (0, 1].
      ymax_decay: decay of the running maximum error per update, in (0, 1].
      dense_output: as for StaticTopK: the last trainable layer keeps k = n when it
        feeds a softmax cross-entropy directly.

    The defaults were chosen on validation data (docs/algorithm.md, "Defaults"); the
    paper's setting is TinyProp(0.1, 0.9, 0.5).
    """

    s_min: float = 0.2
    s_max: float = 1.0
    zeta: float = 0.8
    ymax_decay: float = 1.0
    dense_output: bool = field(default=DENSE_OUTPUT, kw_only=True)

    def __post_init__(self):
        if not 0.0 <= self.s_min <= self.s_max <= 1.0:
            raise ValueError("TinyProp needs 0 <= s_min <= s_max <= 1")
        if not 0.0 < self.zeta <= 1.0:
            raise ValueError(f"zeta must be in (0, 1], got {self.zeta!r}")
        if not 0.0 < self.ymax_decay <= 1.0:
            raise ValueError(f"ymax_decay must be in (0, 1], got {self.ymax_decay!r}")
        _check_bool(self.dense_output)


@dataclass(frozen=True)
class TinyPropV2(TinyProp):
    """TinyPropV2: TinyProp plus a per-sample gate that skips samples with D <= tau.

    Args (beyond TinyProp's):
      d_min, d_max, beta: the gate's D = (d_min + alpha * (d_max - d_min)) * beta.
      tau: the gate's threshold; a sample trains iff D > tau.
      budget: None, or the target fraction b in (0, 1] of full backprop's backward
        MACs: tau then adapts online, starting at `tau` (docs/algorithm.md,
        "Compute budget"). b can only be met up to TinyProp's own effort with every
        sample trained.
      budget_rate: the factor of the moving average of the spent fraction (lambda).
      budget_gain: how far tau moves per unit of overspending, per sample (kappa).

    The defaults (s_min=0.3, s_max=1.0, zeta=0.8, tau=0.3) were chosen on validation
    data (docs/algorithm.md, "Defaults"); the paper's setting is s_min=0.1,
    s_max=0.9, zeta=0.5, tau=0.5.
    """

    s_min: float = 0.3
    s_max: float = 1.0
    zeta: float = 0.8
    ymax_decay: float = 1.0
    d_min: float = 0.0
    d_max: float = 1.0
    beta: float = 1.0
    tau: float = 0.3
    budget: float = field(default=None, kw_only=True)
    budget_rate: float = field(default=0.01, kw_only=True)
    budget_gain: float = field(default=0.05, kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        if not all(math.isfinite(v) for v in (self.d_min, self.d_max, self.beta, self.tau)):
            raise ValueError("d_min, d_max, beta and tau must be finite")
        if self.budget is not None and not 0.0 < self.budget <= 1.0:
            raise ValueError(f"budget must be None or in (0, 1], got {self.budget!r}")
        if not 0.0 < self.budget_rate <= 1.0:
            raise ValueError(f"budget_rate must be in (0, 1], got {self.budget_rate!r}")
        if not (math.isfinite(self.budget_gain) and self.budget_gain >= 0.0):
            raise ValueError(f"budget_gain must be >= 0, got {self.budget_gain!r}")


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= value < 2 ** 32:
        raise ValueError(f"{name} must be an integer from {minimum} to 2**32 - 1, got {value!r}")


@dataclass(frozen=True)
class LastLayers(Policy):
    """Baseline: only the last `n` trainable layers train, fully; the error stops
    below them (docs/baselines.md). More than the model has trains them all."""

    n: int = 1

    def __post_init__(self):
        _check_count("n", self.n, 1)

    def _fields(self, num_layers):
        return dict(last_layers=self.n)


@dataclass(frozen=True)
class BiasOnly(Policy):
    """Baseline: only the biases train (every layer's that has one); the error
    passes every layer above the lowest bias (docs/baselines.md)."""

    def _fields(self, num_layers):
        return {}


@dataclass(frozen=True)
class SparseUpdate(Policy):
    """Baseline: MIT's static sparse update (docs/baselines.md).

    Args:
      bias_layers: the last `bias_layers` trainable layers train their biases.
      weight_layers: {layer: ratio}: those layers (which must lie within the bias
        range) also train the weights of round(ratio * channels) output channels,
        the ones with the largest weight norm at Init. A layer is a trainable-layer
        index, negative ones counting from the output (-1 is the last layer).
        The last layer always trains fully.
    """

    bias_layers: int = 1
    weight_layers: dict = field(default_factory=dict)

    def __post_init__(self):
        _check_count("bias_layers", self.bias_layers, 0)
        if not isinstance(self.weight_layers, dict):
            raise TypeError(f"weight_layers must be a dict {{layer: ratio}}, got {self.weight_layers!r}")
        for layer, ratio in self.weight_layers.items():
            if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
                raise TypeError(f"weight_layers keys must be layer indices (int), got {layer!r}")
            if not (isinstance(ratio, numbers.Real) and 0.0 <= ratio <= 1.0):
                raise ValueError(f"weight_layers[{layer}] must be a ratio in [0, 1], got {ratio!r}")
        object.__setattr__(self, "weight_layers", {int(k): float(v) for k, v in self.weight_layers.items()})

    def __hash__(self):
        return hash((self.bias_layers, tuple(sorted(self.weight_layers.items()))))

    @property
    def needs_layer_count(self):
        return any(layer >= 0 for layer in self.weight_layers)

    def _fields(self, num_layers):
        ratios = {}
        for layer, ratio in self.weight_layers.items():
            if layer < 0:
                position = -layer - 1
            elif num_layers is None:
                raise ValueError("SparseUpdate names layers by non-negative index: the model's layer count is needed")
            elif layer >= num_layers:
                raise ValueError(f"SparseUpdate weight_layers names layer {layer}; the model has {num_layers}")
            else:
                position = num_layers - 1 - layer
            if position >= MAX_LAYERS or (num_layers is not None and position >= num_layers):
                raise ValueError(f"SparseUpdate weight_layers names layer {layer}, which the model does not have")
            if position in ratios:
                raise ValueError(f"SparseUpdate weight_layers names one layer twice (as {layer} and another index)")
            ratios[position] = ratio
        weight_ratios = [0.0] * (max(ratios) + 1 if ratios else 0)
        for position, ratio in ratios.items():
            weight_ratios[position] = ratio
        return dict(bias_layers=self.bias_layers, weight_ratios=weight_ratios)


@dataclass(frozen=True)
class TinyTrain(Policy):
    """Baseline: TinyTrain's task-adaptive selection, once, on the device
    (docs/baselines.md). The first `samples` training samples run forward and
    backward without an update (they count as skipped, and in the effort) to
    measure each output channel's Fisher potential; then layers and channels are
    chosen greedily within the budgets, and only those train.

    Args:
      samples: K, the selection's labelled samples.
      mac_budget: backward MACs per sample the selection may spend, as a share
        of full backprop's, in (0, 1]. The last layer always trains.
      memory_budget: None, or the bytes its training may use (saved activations
        and weight gradients, as docs/baselines.md counts them).
    """

    samples: int = 10
    mac_budget: float = 0.1
    memory_budget: int = None

    def __post_init__(self):
        _check_count("samples", self.samples, 1)
        if not (isinstance(self.mac_budget, numbers.Real) and 0.0 < self.mac_budget <= 1.0):
            raise ValueError(f"mac_budget must be in (0, 1], got {self.mac_budget!r}")
        if self.memory_budget is not None:
            _check_count("memory_budget", self.memory_budget, 1)

    def _fields(self, num_layers):
        return dict(samples=self.samples, mac_budget=self.mac_budget, memory_budget=self.memory_budget)


BASELINES = (LastLayers, BiasOnly, SparseUpdate, TinyTrain)


def policy_from_dict(values):
    """The policy a plan or the C++ trainer describes (a dict or its typed record)."""
    kind = {v: k for k, v in _KINDS.items()}[int(values["kind"])]
    if kind == "Full":
        return Full()
    if kind == "LastLayers":
        return LastLayers(int(values["last_layers"]))
    if kind == "BiasOnly":
        return BiasOnly()
    if kind == "SparseUpdate":
        ratios = {-(p + 1): float(r) for p, r in enumerate(values["weight_ratios"]) if r > 0.0}
        return SparseUpdate(int(values["bias_layers"]), ratios)
    if kind == "TinyTrain":
        memory = int(values["memory_budget"])
        return TinyTrain(int(values["samples"]), float(values["mac_budget"]), memory if memory > 0 else None)
    # (The C++ reads a version 2 plan, which predates dense_output, as False.)
    dense = bool(values["dense_output"])
    if kind == "StaticTopK":
        return StaticTopK(values["ratio"], dense_output=dense)
    tinyprop = {k: values[k] for k in ("s_min", "s_max", "zeta", "ymax_decay")}
    tinyprop["dense_output"] = dense
    if kind == "TinyProp":
        return TinyProp(**tinyprop)
    budget = float(values["budget"])
    return TinyPropV2(**tinyprop, **{k: values[k] for k in ("d_min", "d_max", "beta", "tau", "budget_rate",
                                                             "budget_gain")},
                      budget=budget if budget > 0.0 else None)


_NAMES = {"full": Full, "static": StaticTopK, "statictopk": StaticTopK, "tinyprop": TinyProp,
          "tinypropv2": TinyPropV2, "lastlayers": LastLayers, "biasonly": BiasOnly, "sparseupdate": SparseUpdate,
          "tinytrain": TinyTrain}
_INTEGERS = {"n", "bias_layers", "samples", "memory_budget"}


def _sparse_update_from_json(text):
    """SparseUpdate from its scheme as JSON: {"bias_layers": 3, "weight_layers": {"-2": 0.5}}."""
    import json

    try:
        scheme = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"SparseUpdate scheme is not valid JSON ({e.msg}): {text}") from None
    if not isinstance(scheme, dict) or set(scheme) - {"bias_layers", "weight_layers"}:
        raise ValueError('SparseUpdate scheme must be {"bias_layers": N, "weight_layers": {"LAYER": RATIO}}')
    layers = scheme.get("weight_layers", {})
    if not isinstance(layers, dict):
        raise ValueError('SparseUpdate "weight_layers" must be an object {"LAYER": RATIO}')
    try:
        layers = {int(k): v for k, v in layers.items()}
    except ValueError:
        raise ValueError("SparseUpdate weight_layers keys must be layer indices like \"-2\"") from None
    return SparseUpdate(scheme.get("bias_layers", 1), layers)


def parse_policy(text):
    """A policy from text: "full", "static:0.3", "tinyprop", "tinypropv2:tau=0.4,s_min=0.2",
    "static:ratio=0.1,dense_output=false", "lastlayers:2", "biasonly",
    'sparseupdate:{"bias_layers": 3, "weight_layers": {"-2": 0.5}}',
    "tinytrain:samples=10,mac_budget=0.1"."""
    name, _, args = text.strip().partition(":")
    cls = _NAMES.get(name.lower().replace("_", "").replace("-", ""))
    if cls is None:
        raise ValueError(f"unknown policy '{name}'; use one of full, static:RATIO, tinyprop[:k=v,...], "
                         "tinypropv2[:k=v,...], lastlayers:N, biasonly, sparseupdate:JSON, tinytrain[:k=v,...]")
    if not args:
        return cls()
    if cls is SparseUpdate:
        return _sparse_update_from_json(args)
    if cls is StaticTopK and "=" not in args:
        return StaticTopK(float(args))
    if cls is LastLayers and "=" not in args:
        return LastLayers(_integer("n", args))
    values = {}
    for item in args.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"policy parameter '{item}' must be key=value")
        key = key.strip()
        if key == "dense_output":
            flag = value.strip().lower()
            if flag not in ("true", "false", "1", "0"):
                raise ValueError(f"dense_output must be true or false, got '{value}'")
            values[key] = flag in ("true", "1")
        elif key in _INTEGERS:
            values[key] = _integer(key, value)
        else:
            values[key] = float(value)
    return cls(**values)


def _integer(key, text):
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"policy parameter {key} must be an integer, got '{text}'") from None
