"""Sparsity policies: which outputs of each trainable layer get a backward pass.

The math is docs/algorithm.md's; the C++ trainer runs it. A policy is stored in the
plan at conversion (`convert(..., policy=...)`) and can be overridden per
trainer (`MicroTrainer(model, policy=...)`).
"""

import math
from dataclasses import asdict, dataclass, field

_KINDS = {"Full": 0, "StaticTopK": 1, "TinyProp": 2, "TinyPropV2": 3}
# The sparse policies' dense_output default, chosen on validation data (docs/algorithm.md).
DENSE_OUTPUT = True


def _check_bool(value):
    if not isinstance(value, bool):
        raise TypeError(f"dense_output must be True or False, got {value!r}")


class Policy:
    """Base class of the four policies."""

    def to_dict(self):
        """All parameters, as the C++ trainer takes them (defaults for unused ones)."""
        values = dict(ratio=1.0, s_min=0.1, s_max=0.9, zeta=0.5, ymax_decay=1.0,
                      d_min=0.0, d_max=1.0, beta=1.0, tau=0.5, dense_output=False, budget=0.0,
                      budget_rate=0.01, budget_gain=0.05)
        values.update(asdict(self))
        if values["budget"] is None:
            values["budget"] = 0.0
        values["kind"] = _KINDS[type(self).__name__]
        return values

    def to_params(self):
        """The parameters as the compiled trainer takes them (a typed record)."""
        from . import _core

        params = _core.PolicyParams()
        for key, value in self.to_dict().items():
            setattr(params, key, value)
        return params

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
    """

    s_min: float = 0.1
    s_max: float = 0.9
    zeta: float = 0.5
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
    """

    d_min: float = 0.0
    d_max: float = 1.0
    beta: float = 1.0
    tau: float = 0.5
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


def policy_from_dict(values):
    """The policy a plan or the C++ trainer describes (a dict or its typed record)."""
    kind = {v: k for k, v in _KINDS.items()}[int(values["kind"])]
    if kind == "Full":
        return Full()
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
          "tinypropv2": TinyPropV2}


def parse_policy(text):
    """A policy from text: "full", "static:0.3", "tinyprop", "tinypropv2:tau=0.4,s_min=0.2",
    "static:ratio=0.1,dense_output=false"."""
    name, _, args = text.strip().partition(":")
    cls = _NAMES.get(name.lower().replace("_", "").replace("-", ""))
    if cls is None:
        raise ValueError(f"unknown policy '{name}'; use one of full, static:RATIO, tinyprop[:k=v,...], "
                         "tinypropv2[:k=v,...]")
    if not args:
        return cls()
    if cls is StaticTopK and "=" not in args:
        return StaticTopK(float(args))
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
        else:
            values[key] = float(value)
    return cls(**values)
