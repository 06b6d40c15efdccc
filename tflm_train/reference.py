"""ReferenceTrainer: the algorithm of docs/algorithm.md in Keras/TensorFlow, the oracle
the C++ trainer (MicroTrainer) is checked against.

Everything that is a gradient is computed here with TensorFlow on the Keras model
itself (tf.GradientTape), never by the C++:

- The model (Sequential or Functional, nested models opened up; a chain or any DAG of
  the layers tflm_train.convert supports) runs layer by layer through Keras' own graph
  runner (`keras_model.run_graph`) with training=False: Dropout is the identity, as in
  the converted model. Its weights are the converter's weight units
  (`keras_model.weight_units`, so both train the same parameters): one per Dense,
  Conv1D, Conv2D and DepthwiseConv2D layer, two per SeparableConv2D
  ("<layer>/depthwise" without bias, then "<layer>/pointwise" with the layer's bias
  and activation), each with the BatchNormalization that follows it folded in.
- A unit is split into its linear part `z` (its pre-activation, the point where the
  layer's error `delta = dL/dz` is taken) and its activation `a = f(z)`. Dense:
  `x @ kernel + bias`; Conv1D/Conv2D: `keras.ops.conv` with the layer's strides,
  padding and dilation, plus bias (Conv1D's "causal" padding is the explicit left
  padding Keras applies, then "valid"); DepthwiseConv2D: `keras.ops.depthwise_conv`,
  plus bias; SeparableConv2D: the depthwise half (no bias, no activation), then the
  pointwise half, a 1x1 `keras.ops.conv` plus bias. A folded BatchNormalization layer
  is the identity (the unit it is folded into is linear: check_layers demands it).
- Variables: a unit without batch norm trains the Keras layer's own variables, so the
  Keras model is trained in place. A unit with a folded batch norm owns new variables
  holding the folded kernel and bias (`WeightUnit.values()`, taken when the trainer is
  made); the Keras layer and its BatchNormalization are then never updated, and
  `get_weights` is where the trained (folded) values are. The batch norm after a
  SeparableConv2D folds into its pointwise half only: the depthwise half still trains
  the layer's `depthwise_kernel` in place, the pointwise half its folded copies.
- The loss is Keras' own (keras.losses functions; a rank-3+ output's per-element
  losses are averaged per sample, as Keras' loss objects do). A softmax/sigmoid output
  carries its logits (Keras' `_keras_logits`), so the cross-entropies are computed and
  differentiated in the logits form, as Keras does.
- Sparse backward, for chains and DAGs alike: in the forward pass the graph continues
  after every trainable unit's `z` from a watched constant copy `z_cut` (no gradient
  flows back through the copy), which cuts the tape into segments at the trainable
  units. The trainable units are then processed from the last to the first in
  execution order. Unit l's error is
  `delta_l = d/dz_cut_l [loss + sum over later trainable units m of <z_m, delta_hat_m>]`
  (tape.gradient of [loss, z_m...] with output gradients [1, delta_hat_m...]): the loss
  gradient plus every later unit's kept error sent back (densely: through activations,
  pooling, padding, Add and frozen units) to this unit's output. In a chain that is the
  next trainable unit's `delta_hat` sent back through its kernel, as docs/algorithm.md
  states; where the graph branches, the contributions of all paths add. The policy
  picks `k` from `n = delta.size` (a convolution's whole output map, H*W*C); the top-k
  of `|delta|` (ties: the lower flat index, in NHWC order) gives `delta_hat`; the kernel
  gradient is the tape's with `delta_hat` as the output gradient of `z_l`; the bias
  gradient takes the dense `delta`.
- Gradients are summed over the batch's trained samples, divided by their number and
  applied with Keras' own SGD (`tflm_train.SGD.to_keras()`), so momentum, weight decay
  and schedules are Keras'. A batch whose samples were all skipped applies nothing,
  but the schedule still advances (`optimizer.iterations` is incremented by hand).

The few scalar decisions the policies make (Y, Ymax, S, k and the TinyPropV2 gate)
are reproduced in float32 with the operations in the order docs/algorithm.md and the C++
use: Y is a sequential float32 sum of |delta| in flat index order, zeta^p is a
repeated float32 product, round is round-half-away-from-zero (C's roundf). That
makes k and the skip decisions comparable exactly; the errors they are computed from
come from TensorFlow, so they can differ from the C++ by float32 rounding.

Effort accounting (docs/algorithm.md; the C++ counts identically, this is the contract).
Per sample, a weight unit's `fan_in` is n_in (dense), KH*KW*C_in (Conv2D, Conv1D with
KH = 1, and the pointwise half with KH = KW = 1) or KH*KW (depthwise), and `n_out` is
its number of output elements (H_out*W_out*C_out; depthwise C_out = C_in*multiplier).
- Forward MACs: the sum of n_out * fan_in over ALL weight units (padded taps
  included).
- A tensor "needs a gradient" iff it is a trainable unit's output or is computed from
  one. Backward MACs of a trained sample: every trainable unit k * fan_in (weight
  gradient) plus k * fan_in if its input needs a gradient (so never for the first
  trainable unit); every frozen unit whose input needs a gradient n_out * fan_in (its
  dense input gradient); frozen units whose input needs none cost nothing (a frozen
  prefix has no backward work at all).
- A sample the TinyPropV2 gate skips pays only the frozen units that come after the
  last trainable unit in execution order and whose input needs a gradient: they have
  to be passed before the last trainable unit's error exists (with the usual "last N
  layers trainable" there are none).
- `selection_ops` is always 0: the reference selects with a stable sort, whose
  comparison count says nothing about the C++ quickselect; the C++ reports its own.

Comparing with another implementation: `ambiguities` lists every decision that
float32 rounding differences in the errors could flip (the k-th and (k+1)-th largest
|delta| within `ambiguity_rtol` * max|delta|, S*n that close to a rounding midpoint, D
that close to tau), and `last_selection` holds the kept indices of the last step. A
real case: a confidently wrong softmax output has two errors |p_c - 1| and p_j that
differ only by the leftover probability, which rounding can reorder.

Weights are exchanged as {unit name: (kernel, bias or None)} (`get_weights`,
`set_weights`, `micro_weights`) in one of three kernel layouts: "keras" (Keras'
layout for every unit), "tflite" (TFLite's: dense [out, in], convolutions OHWI,
depthwise [1, KH, KW, C*mult]) and "micro" (what `micro_weights` reads from a .tflite:
dense in Keras' [in, out], as before convolutions existed, convolutions in TFLite's).
"""

import math

import numpy as np

from .optimizers import SGD
from .policies import BASELINES, POLICY_TYPES, Full, Policy, SparseUpdate, StaticTopK, TinyProp, TinyPropV2
from .reference_baselines import BaselineChoice, LayerFacts
from .converter.convert import loss_name as _loss_name
from .converter.keras_model import (WEIGHT_LAYERS, check_layers, layer_kind, run_graph, trace, trainable_units,
                                    weight_units)
from .trainer import _CLASSIFYING, StepResult, epoch_order

_F32 = np.float32

LAYOUTS = ("keras", "tflite", "micro")


# --- the policies' scalar arithmetic, float32 in docs/algorithm.md's order ---------------

def total_error(delta):
    """Y = sum |delta| as a sequential float32 sum in flat index order."""
    a = np.abs(np.asarray(delta, np.float32).ravel())
    if a.size == 0:
        return _F32(0.0)
    return _F32(np.add.accumulate(a, dtype=np.float32)[-1])


def roundf(v):
    """C's roundf on a float32 value: half away from zero (exact in float64)."""
    v = float(v)
    if not math.isfinite(v):
        return v
    return math.copysign(math.floor(abs(v) + 0.5), v)


def clamp_k(s, n):
    """k = clamp(roundf(s * n), 1, n) with s * n a float32 product; NaN gives 1."""
    kept = roundf(_F32(_F32(s) * _F32(n)))
    if not kept >= 1.0:
        return 1
    if kept >= n:
        return int(n)
    return int(kept)


class PolicyArithmetic:
    """A policy's parameters as float32 and its per-layer decisions."""

    def __init__(self, policy):
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be {POLICY_TYPES}")
        self.policy = policy
        p = Full().to_dict() if isinstance(policy, SparseUpdate) else policy.to_dict()  # its layers need a model
        self.kind = type(policy)
        for key in ("ratio", "s_min", "s_max", "zeta", "ymax_decay", "d_min", "d_max", "beta", "tau", "budget",
                    "budget_rate", "budget_gain"):
            setattr(self, key, _F32(p[key]))

    def update_ymax(self, y, ymax):
        """The new running maximum: max(Ymax * ymax_decay, Y), decayed first."""
        decayed = _F32(_F32(ymax) * self.ymax_decay)
        return _F32(y) if _F32(y) > decayed else decayed

    def ratio_s(self, position, y, ymax):
        """TinyProp's S for a layer `position` trainable layers from the output, and
        whether Y/Ymax was exactly 1 (then S is exact in any implementation)."""
        y, ymax = _F32(y), _F32(ymax)
        ratio = _F32(y / ymax) if ymax > 0 else _F32(0.0)
        damping = _F32(1.0)
        for _ in range(position):
            damping = _F32(damping * self.zeta)
        s = _F32(_F32(self.s_min + _F32(_F32(self.s_max - self.s_min) * ratio)) * damping)
        return s, bool(ratio == 1.0 or ymax == 0)

    def kept(self, n, position, y, ymax, feeds_softmax=False):
        """k for a layer; `feeds_softmax`: the layer feeds a softmax cross-entropy directly."""
        if self.policy.to_dict()["dense_output"] and position == 0 and feeds_softmax:
            return int(n)
        if self.kind is StaticTopK:
            return clamp_k(self.ratio, n)
        if self.kind in (TinyProp, TinyPropV2):
            return clamp_k(self.ratio_s(position, y, ymax)[0], n)
        return int(n)

    def gate_value(self, y_out, ymax_out):
        """TinyPropV2's D (float32), and whether alpha was exactly 0 or 1."""
        y_out, ymax_out = _F32(y_out), _F32(ymax_out)
        alpha = _F32(y_out / ymax_out) if ymax_out > 0 else _F32(0.0)
        d = _F32(_F32(self.d_min + _F32(alpha * _F32(self.d_max - self.d_min))) * self.beta)
        return d, bool(alpha == 1.0 or alpha == 0.0)

    def gate_trains(self, y_out, ymax_out, tau=None):
        """TinyPropV2's gate: D > tau (always True for the other policies); `tau`
        the budget's threshold, else the configured one."""
        if self.kind is not TinyPropV2:
            return True
        return bool(self.gate_value(y_out, ymax_out)[0] > (self.tau if tau is None else _F32(tau)))

    def update_budget(self, fraction, spent, tau):
        """The budget after one sample: (moving average of the spent fraction, tau)."""
        if self.kind is not TinyPropV2 or not self.budget > 0:
            return _F32(spent), _F32(tau)
        spent = _F32(_F32(spent) + _F32(self.budget_rate * _F32(_F32(fraction) - _F32(spent))))
        moved = _F32(_F32(tau) + _F32(self.budget_gain * _F32(_F32(spent - self.budget) / self.budget)))
        return spent, _F32(min(max(moved, _F32(0.0)), _F32(1.0)))

    def ambiguities(self, n, position, y, ymax, delta, k, rtol, gate_only=False):
        """Decisions of this layer that float32 rounding differences in the errors
        (relative `rtol`) could flip: the k-th/(k+1)-th largest |delta| closer than
        rtol * max|delta| (the selected set is then not well defined across
        implementations), S*n within rtol of a rounding midpoint, D within rtol of tau."""
        found = []
        if self.kind is TinyPropV2 and position == 0:
            d, exact = self.gate_value(y, ymax)
            if not exact and abs(float(d) - float(self.tau)) <= rtol * max(abs(float(d)), abs(float(self.tau))):
                found.append(("gate", dict(D=float(d), tau=float(self.tau))))
        if gate_only:
            return found
        if self.kind in (TinyProp, TinyPropV2):
            s, exact = self.ratio_s(position, y, ymax)
            v = float(_F32(s * _F32(n)))
            below, above = (max(1, min(int(n), int(math.floor(v)) + j)) for j in (0, 1))
            if not exact and abs(v - (math.floor(v) + 0.5)) <= rtol * v and below != above:
                found.append(("k_rounding", dict(s_times_n=v)))
        if k < n:
            mags = np.sort(np.abs(np.asarray(delta, np.float32).ravel()))[::-1]
            kept, dropped = float(mags[k - 1]), float(mags[k])
            if kept != 0.0 and kept - dropped <= rtol * float(mags[0]):
                found.append(("selection_tie", dict(kth=kept, next=dropped, largest=float(mags[0]), k=k)))
        return found


def top_k_mask(delta, k):
    """1.0 at the k largest |delta| (ties: the lower flat index), 0.0 elsewhere."""
    flat = np.abs(np.asarray(delta, np.float32).ravel())
    mask = np.zeros(flat.size, np.float32)
    if k >= flat.size:
        mask[:] = 1.0
    else:
        mask[np.argsort(-flat, kind="stable")[:k]] = 1.0
    return mask.reshape(np.shape(delta))


# --- the model's weight units -------------------------------------------------------------

def _tf_variable(v):
    """The tf.Variable behind a Keras variable (what a GradientTape watches)."""
    return getattr(v, "value", v)


class WeightDict(dict):
    """{unit name: (kernel, bias or None)} that remembers its kernels' layout:
    "keras", "tflite" or "micro" (see the module docstring). `set_weights` reads the
    layout from it, so no shape has to be guessed."""

    def __init__(self, *args, layout=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.layout = layout


class _Unit:
    """A weight unit (keras_model.WeightUnit) as the reference runs it: its linear
    part z, its activation, the variables it trains, and its per-sample sizes.

    `fan_in`: MACs per output element (n_in, KH*KW*C_in or KH*KW); `n_out`: output
    elements per sample; `forward_macs` = n_out * fan_in (also the cost of the dense
    input gradient of a frozen unit); `input_needs_grad`: whether the unit's input is
    computed from a trainable unit's output. The last three are set by the trainer.
    """

    def __init__(self, unit, trainable):
        import keras

        self.unit = unit
        self.name = unit.name
        self.kind = unit.kind
        self.layer = unit.layer
        self.trainable = bool(trainable)
        self.folded = unit.batchnorm is not None
        if self.folded:
            kernel, bias = unit.values()
            stem = self.name.replace("/", "_")
            self.kernel = keras.Variable(kernel, name=f"{stem}_folded_kernel")
            self.bias = keras.Variable(bias, name=f"{stem}_folded_bias")
        else:
            self.kernel = getattr(self.layer, unit.kernel_variable)
            self.bias = self.layer.bias if unit.has_own_bias else None
        shape = tuple(int(d) for d in self.kernel.shape)
        self.keras_shape = shape
        self.tflite_shape = unit.tflite_kernel(np.zeros(shape, np.float32)).shape
        if self.kind == "dense":
            self.fan_in = shape[0]
        elif self.kind in ("depthwise", "separable_depthwise"):
            self.fan_in = shape[0] * shape[1]
        else:
            self.fan_in = int(np.prod(shape[:-1]))
        self.n_out = None
        self.forward_macs = None
        self.input_needs_grad = False

    @property
    def variables(self):
        return [v for v in (self.kernel, self.bias) if v is not None]

    def linear(self, x):
        from keras import ops

        layer, kernel = self.layer, self.kernel
        if self.kind == "dense":
            z = ops.matmul(x, kernel)
        elif self.kind in ("conv1d", "conv2d"):
            padding = layer.padding
            if padding == "causal":                      # Keras' Conv1D: pad on the left, then valid
                left = int(layer.dilation_rate[0]) * (int(layer.kernel_size[0]) - 1)
                x = ops.pad(x, [[0, 0], [left, 0], [0, 0]])
                padding = "valid"
            z = ops.conv(x, kernel, strides=list(layer.strides), padding=padding,
                         dilation_rate=layer.dilation_rate, data_format="channels_last")
        elif self.kind in ("depthwise", "separable_depthwise"):
            z = ops.depthwise_conv(x, kernel, strides=layer.strides, padding=layer.padding,
                                   dilation_rate=layer.dilation_rate, data_format="channels_last")
        else:                                            # separable_pointwise: 1x1, stride 1
            z = ops.conv(x, kernel, strides=1, padding="valid", data_format="channels_last")
        if self.bias is not None:
            z = ops.add(z, self.bias)
        return z

    def activate(self, z):
        if self.kind == "separable_depthwise" or self.layer.activation is None:
            return z
        return self.layer.activation(z)

    def keras_kernel(self, kernel, layout):
        """A kernel given in `layout` (None: recognized by its shape) in Keras' layout."""
        w = np.asarray(kernel, np.float32)
        if layout == "micro":
            layout = "keras" if self.kind == "dense" else "tflite"
        if layout is None:
            as_keras, as_tflite = w.shape == self.keras_shape, w.shape == tuple(self.tflite_shape)
            if as_keras and as_tflite and self.kind not in ("dense", "depthwise", "separable_depthwise"):
                # dense: Keras' [in, out] wins (micro_weights' and get_weights()' layout);
                # depthwise: both layouts hold the same data in the same order.
                raise ValueError(f"the kernel of '{self.name}' has shape {w.shape}, which is both its Keras and "
                                 "its TFLite shape: pass layout='keras' or layout='tflite'")
            layout = "keras" if as_keras else "tflite" if as_tflite else None
        if layout == "keras" and w.shape == self.keras_shape:
            return w
        if layout == "tflite" and w.shape == tuple(self.tflite_shape):
            return self.unit.keras_kernel(w)
        raise ValueError(f"the kernel of '{self.name}' has shape {w.shape}; its Keras shape is {self.keras_shape} "
                         f"and its TFLite shape {tuple(self.tflite_shape)}")

    def kernel_in(self, layout):
        kernel = np.asarray(self.kernel.numpy(), np.float32)
        if layout == "tflite" or (layout == "micro" and self.kind != "dense"):
            return self.unit.tflite_kernel(kernel)
        return kernel


def _build_units(model, trainable):
    """The model's _Units in execution order, checked; the units of each layer (by
    id); the ids of the folded BatchNormalization layers."""
    from .errors import ConversionError

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("the reference trainer needs a model with exactly one input and one output")
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"the input shape {tuple(model.inputs[0].shape)} must be fully known")
    try:
        check_layers(model)
        nodes = trace(model)
        seen = set()
        for node in nodes:
            if layer_kind(node.layer) in WEIGHT_LAYERS + ("BatchNormalization",):
                if id(node.layer) in seen:
                    raise ValueError(f"layer '{node.layer.name}' ({type(node.layer).__name__}) is called more "
                                     "than once (shared weights), which the reference trainer does not support")
                seen.add(id(node.layer))
        units = weight_units(model)
        if not units:
            raise ValueError("the model has no weight layer (Dense, Conv1D, Conv2D, DepthwiseConv2D, "
                             "SeparableConv2D)")
        chosen = {id(u) for u in trainable_units(units, trainable)}
    except ConversionError as e:
        raise ValueError(f"the reference trainer cannot train this model: {e}") from None
    built = [_Unit(u, id(u) in chosen) for u in units]
    of_layer = {}
    for i, u in enumerate(built):
        of_layer.setdefault(id(u.layer), []).append(i)
    # Which tensors need a gradient: a trainable unit's output and whatever is computed from one.
    needs = {}
    for node in nodes:
        flowing = any(needs[id(p)] for p in node.inputs if p is not None)
        for i in of_layer.get(id(node.layer), ()):
            built[i].input_needs_grad = flowing
            flowing = flowing or built[i].trainable
        needs[id(node)] = flowing
    folded = {id(u.batchnorm) for u in units if u.batchnorm is not None}
    return built, of_layer, folded


# --- the trainer -------------------------------------------------------------------------

class ReferenceTrainer:
    """Trains a Keras model with docs/algorithm.md's algorithm, in TensorFlow.

    Args:
      model: a built Keras Sequential/Functional model (a chain or a DAG, nested models
        allowed) of the layers tflm_train.convert supports (keras_model.SUPPORTED_LAYERS:
        Dense, Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, BatchNormalization folded
        into the linear weight layer before it, pooling, global average pooling, zero
        padding, Add, activations, Flatten, Reshape, Dropout), with one input of fully
        known shape and one output. Anything else (and a weight layer called more than
        once) is a ValueError. The weights of units without batch norm are updated in
        place; units with a folded batch norm train their own copies (see the module
        docstring).
      loss: as for tflm_train.convert ("sparse_categorical_crossentropy",
        "categorical_crossentropy", "mse", "binary_crossentropy" or the Keras loss objects).
      optimizer: a tflm_train.SGD (or a keras.optimizers.SGD); the Keras SGD that
        applies the updates is `optimizer.to_keras()`.
      policy: Full(), StaticTopK(...), TinyProp(...), TinyPropV2(...) or a baseline
        (LastLayers, BiasOnly, SparseUpdate, TinyTrain; docs/baselines.md).
      trainable: None (every weight layer Keras marks trainable), a list of layer names,
        or an int N (the last N weight layers), as tflm_train.convert; both halves of a
        SeparableConv2D train together.
      seed: seeds the shuffling in `fit`, as MicroTrainer's.
    """

    def __init__(self, model, *, loss, optimizer, policy=Full(), trainable=None, seed=0):
        import keras

        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
        self.model = model
        self.loss = _loss_name(loss)
        self._loss_fn = getattr(keras.losses, self.loss)
        if not isinstance(optimizer, SGD):
            optimizer = SGD.from_keras(optimizer)
        self.sgd = optimizer
        self.optimizer = optimizer.to_keras()
        self._policy = PolicyArithmetic(Full() if policy is None else policy)
        self._units, self._units_of_layer, self._folded_bn = _build_units(model, trainable)
        self._trainable_index = [i for i, u in enumerate(self._units) if u.trainable]
        self._layers = [self._units[i] for i in self._trainable_index]   # trainable, forward order
        self._variables = [v for u in self._layers for v in u.variables]
        self._tf_variables = [_tf_variable(v) for v in self._variables]
        # Sizes from one forward pass at batch size 1, then the effort constants.
        _, records = self._forward(np.zeros((1,) + tuple(int(d) for d in model.inputs[0].shape[1:]), np.float32))
        for u, (z, _) in zip(self._units, records):
            u.n_out = int(np.prod(z.shape[1:]))
            u.channels = int(z.shape[-1])
            u.forward_macs = u.n_out * u.fan_in
        last = self._trainable_index[-1]
        paid = [i for i, u in enumerate(self._units) if not u.trainable and u.input_needs_grad]
        self._forward_macs = sum(u.forward_macs for u in self._units)
        self._frozen_macs = sum(self._units[i].forward_macs for i in paid)
        self._skip_macs = sum(self._units[i].forward_macs for i in paid if i > last)
        # dense_output applies when the loss folds the final softmax and no weight unit
        # the backward pass visits comes after the last trainable one.
        self._feeds_softmax = (self.loss in ("sparse_categorical_crossentropy", "categorical_crossentropy")
                               and not any(i > last for i in paid))
        # One sample's backward MACs under Full(): the budget's denominator.
        self._full_backward_macs = self._frozen_macs + sum(
            u.forward_macs * (2 if u.input_needs_grad else 1) for u in self._layers)
        self._ymax = [_F32(0.0) for _ in self._layers]
        self._reset_budget()
        self._baseline = self._baseline_choice(policy)
        self._seed = seed
        self.counters = dict(steps=0, updates=0, samples=0, trained=0, skipped=0, forward_macs=0,
                             backward_macs=0, selection_ops=0, epochs=0)
        self.stop_training = False
        # Decisions float32 rounding could flip (see PolicyArithmetic.ambiguities): the
        # exact comparison with another implementation is only meaningful without them.
        self.ambiguity_rtol = 1e-5
        self.ambiguities = []
        self._sample = 0
        self._kept_rows = []
        # Per sample of the last step, per trainable unit: the kept flat indices of the
        # unit's error (None where the sample was skipped before reaching the unit).
        self.last_selection = []

    # --- properties -----------------------------------------------------------------
    @property
    def policy(self):
        return self._policy.policy

    def _baseline_choice(self, policy):
        """A baseline's BaselineChoice (checked as the C++ Init checks it), else None."""
        if not isinstance(policy, BASELINES):
            return None
        from .policies import BiasOnly, TinyTrain

        n = len(self._layers)
        if isinstance(policy, BiasOnly) and all(u.bias is None for u in self._layers):
            raise ValueError("BiasOnly needs a trainable layer with a bias")
        if isinstance(policy, SparseUpdate):
            if policy.bias_layers > n:
                raise ValueError("SparseUpdate bias_layers exceeds the trainable layers")
            ratios = policy.to_dict(n)["weight_ratios"]
            if any(r > 0.0 and position >= policy.bias_layers for position, r in enumerate(ratios) if position > 0):
                raise ValueError("SparseUpdate weight_layers must lie within the last bias_layers layers")
        partial = isinstance(policy, TinyTrain) or (
            isinstance(policy, SparseUpdate) and any(0.0 < r < 1.0 for r in policy.to_dict(n)["weight_ratios"][1:]))
        if partial and (self.sgd.momentum != 0.0 or self.sgd.weight_decay != 0.0):
            raise ValueError("SparseUpdate and TinyTrain train some channels of a layer; they take SGD without "
                             "momentum or weight decay, which would move the frozen channels")
        facts = [LayerFacts(u, i, u.channels) for i, u in zip(self._trainable_index, self._layers)]
        return BaselineChoice(policy, facts, self._units, self._full_backward_macs)

    @property
    def ymax(self):
        """TinyProp's running maximum error per trainable unit (float32 values)."""
        return [float(v) for v in self._ymax]

    @ymax.setter
    def ymax(self, values):
        if len(values) != len(self._layers):
            raise ValueError(f"need {len(self._layers)} values, one per trainable layer")
        self._ymax = [_F32(v) for v in values]

    @property
    def weight_units(self):
        """Names of all weight units (trainable or not), in execution order."""
        return [u.name for u in self._units]

    @property
    def trainable_layers(self):
        """Names of the trainable weight units, in forward order ("<layer>/depthwise" and
        "<layer>/pointwise" for a SeparableConv2D)."""
        return [u.name for u in self._layers]

    @property
    def learning_rate(self):
        """The rate the next step will use (Keras' schedule at optimizer.iterations)."""
        from keras import ops

        return float(ops.convert_to_numpy(self.optimizer.learning_rate))

    def _reset_budget(self):
        self.gate_tau = self._policy.tau
        self.budget_spent = self._policy.budget  # starts on target, as the C++

    def _spend_budget(self, backward_macs):
        full = self._full_backward_macs
        fraction = _F32(_F32(backward_macs) / _F32(full)) if full > 0 else _F32(0.0)
        self.budget_spent, self.gate_tau = self._policy.update_budget(fraction, self.budget_spent, self.gate_tau)

    def reset_policy_state(self):
        """Forgets TinyProp's running maxima; a TinyTrain selects anew."""
        self._ymax = [_F32(0.0) for _ in self._layers]
        self._reset_budget()
        if self._baseline is not None:
            self._baseline.restart_selection()

    def get_weights(self, layout="keras"):
        """{unit name: (kernel, bias or None)} of every weight unit, as numpy, in
        `layout`: "keras" (Keras' layouts), "tflite" (TFLite's: dense [out, in],
        convolutions OHWI, depthwise [1, KH, KW, C*mult]) or "micro" (micro_weights':
        dense [in, out], convolutions TFLite's). A unit with a folded batch norm gives its
        folded kernel and bias. The result is a WeightDict that remembers its layout."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        return WeightDict({u.name: (u.kernel_in(layout),
                                    None if u.bias is None else np.asarray(u.bias.numpy(), np.float32))
                           for u in self._units}, layout=layout)

    def set_weights(self, weights, layout=None):
        """Sets weight units from {unit name: (kernel, bias or None)}; units not named
        keep theirs. Takes get_weights()' output in any layout and micro_weights(
        MicroTrainer.model_bytes). The kernels' layout is `layout`, else the one a
        WeightDict carries, else recognized by shape: a dense kernel whose shape fits both
        layouts (square) is taken as Keras' [in, out]; a convolution kernel that fits
        both (KH == KW == C_in == C_out) needs `layout`. A folded-batch-norm unit takes
        folded values (as get_weights gives them)."""
        layout = layout if layout is not None else getattr(weights, "layout", None)
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        unknown = sorted(set(weights) - {u.name for u in self._units})
        if unknown:
            raise ValueError(f"no weight units named {unknown}; units: {[u.name for u in self._units]}")
        staged = []
        for u in self._units:
            if u.name not in weights:
                continue
            kernel, bias = weights[u.name]
            kernel = u.keras_kernel(kernel, layout)
            if u.bias is not None:
                if bias is None:
                    raise ValueError(f"unit '{u.name}' has a bias; none was given")
                bias = np.asarray(bias, np.float32)
                if bias.shape != tuple(u.bias.shape):
                    raise ValueError(f"the bias of '{u.name}' has shape {bias.shape}, not {tuple(u.bias.shape)}")
            staged.append((u, kernel, bias))
        for u, kernel, bias in staged:                  # all checked before anything changes
            u.kernel.assign(kernel)
            if u.bias is not None:
                u.bias.assign(bias)

    # --- forward --------------------------------------------------------------------
    def _forward(self, x, tape=None):
        """The model's output and, per weight unit in execution order, (z, z_cut). With
        a tape, the graph continues after every trainable unit's z from z_cut, a watched
        constant copy (so the tape is cut into segments there); else z_cut is None."""
        import tensorflow as tf

        records = [None] * len(self._units)

        def call(layer, *args, **kwargs):
            indices = self._units_of_layer.get(id(layer))
            if indices is not None:
                h = args[0]
                for i in indices:
                    unit = self._units[i]
                    unit.n_in = int(np.prod(h.shape[1:]))
                    z = unit.linear(h)
                    cut = None
                    if tape is not None and unit.trainable:
                        cut = tf.constant(np.asarray(z))      # a fresh tensor: tf.constant(z) would be z itself
                        tape.watch(cut)
                    records[i] = (z, cut)
                    h = unit.activate(z if cut is None else cut)
                return h
            if id(layer) in self._folded_bn or layer_kind(layer) == "Dropout":
                return args[0]
            return layer(*args, **{**kwargs, "training": False})

        out = run_graph(self.model, tf.convert_to_tensor(np.asarray(x, np.float32)), call)
        return out, records

    def _sample_loss(self, y, out):
        """Keras' per-sample loss (logits form for softmax/sigmoid outputs)."""
        from keras import ops

        loss = self._loss_fn(y, out)
        if len(loss.shape) > 1:                         # rank-3+ outputs: the mean over each sample's elements
            loss = ops.mean(loss, axis=tuple(range(1, len(loss.shape))))
        return loss

    def _correct(self, y, out):
        out = np.asarray(out, np.float32).reshape(len(out), -1)
        if self.loss == "sparse_categorical_crossentropy":
            return (np.argmax(out, axis=1) == np.asarray(y).reshape(-1).astype(np.int64)).astype(np.float32)
        y = np.asarray(y, np.float32).reshape(len(out), -1)
        if self.loss == "categorical_crossentropy":
            return (np.argmax(out, axis=1) == np.argmax(y, axis=1)).astype(np.float32)
        if self.loss == "binary_crossentropy":
            return np.mean(((out > 0.5).astype(np.float32) == y).astype(np.float32), axis=1)
        return np.zeros(len(out), np.float32)

    def _prepare(self, x, y):
        x = np.ascontiguousarray(np.asarray(x), np.float32)
        y = np.asarray(y)
        if self.loss == "sparse_categorical_crossentropy":
            y = y.reshape(len(y), -1)[:, 0]
        y = np.ascontiguousarray(y, np.float32)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        return x, y

    def _note_ambiguities(self, op, n, position, y, ymax, delta, k, gate_only=False):
        for kind, detail in self._policy.ambiguities(n, position, y, ymax, delta, k, self.ambiguity_rtol,
                                                     gate_only):
            self.ambiguities.append(dict(step=self.counters["steps"], sample=self._sample, layer=op.name,
                                         kind=kind, **detail))

    # --- one sample -------------------------------------------------------------------
    def _train_sample(self, x, y):
        """Forward, loss, gate and sparse backward of one sample.

        Returns (loss, correct, skipped, k per trainable unit, grads or None, forward
        MACs, backward MACs)."""
        import tensorflow as tf

        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch(self._tf_variables)
            out, records = self._forward(x, tape)
            loss = self._sample_loss(y, out)
        loss_value = float(np.asarray(loss).reshape(-1)[0])
        correct = float(self._correct(y, out.numpy())[0])
        forward_macs = self._forward_macs
        if not math.isfinite(loss_value):
            raise FloatingPointError("loss is not finite")

        if self._baseline is not None:
            result = self._baseline_sample(tape, loss, records, forward_macs)
            del tape
            return (loss_value, correct) + result
        n_layers = len(self._layers)
        # Frozen units behind the last trainable one: passed (densely) to reach it, even on a skip.
        backward_macs = self._skip_macs
        k_out = [0] * n_layers
        kept_rows = self._kept_rows = [None] * n_layers
        grads = [None] * len(self._variables)
        var_slots, var_at = [], 0
        for unit in self._layers:
            var_slots.append(var_at)
            var_at += len(unit.variables)
        z_of = [records[i][0] for i in self._trainable_index]
        delta_hats = [None] * n_layers
        for l in range(n_layers - 1, -1, -1):
            unit = self._layers[l]
            z, cut = records[self._trainable_index[l]]
            # The loss gradient plus every later trainable unit's kept error, sent back to this unit.
            delta = tape.gradient([loss] + z_of[l + 1:], cut,
                                  output_gradients=[tf.ones_like(loss)] + delta_hats[l + 1:],
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            delta_np = np.asarray(delta, np.float32)
            if not np.all(np.isfinite(delta_np)):
                raise FloatingPointError("gradient is not finite")
            y_l = total_error(delta_np)
            position = n_layers - 1 - l
            self._ymax[l] = self._policy.update_ymax(y_l, self._ymax[l])
            if position == 0:
                if not self._policy.gate_trains(y_l, self._ymax[l], self.gate_tau):
                    self._note_ambiguities(unit, int(delta_np.size), 0, y_l, self._ymax[l], delta_np,
                                           int(delta_np.size), gate_only=True)
                    del tape
                    return loss_value, correct, True, [0] * n_layers, None, forward_macs, backward_macs
                # Trained: every frozen unit whose input needs a gradient is passed densely.
                backward_macs = self._frozen_macs
            n = int(delta_np.size)
            k = self._policy.kept(n, position, y_l, self._ymax[l], self._feeds_softmax)
            k_out[l] = k
            self._note_ambiguities(unit, n, position, y_l, self._ymax[l], delta_np, k)
            mask = top_k_mask(delta_np, k)
            kept_rows[l] = np.flatnonzero(mask.ravel())
            delta_hats[l] = tf.constant(delta_np * mask)
            grads[var_slots[l]] = tape.gradient(z, _tf_variable(unit.kernel), output_gradients=delta_hats[l])
            backward_macs += k * unit.fan_in                       # weight gradient
            if unit.bias is not None:
                grads[var_slots[l] + 1] = tape.gradient(z, _tf_variable(unit.bias),
                                                        output_gradients=tf.constant(delta_np))
            if unit.input_needs_grad:
                backward_macs += k * unit.fan_in                   # input gradient
        del tape
        return loss_value, correct, False, k_out, grads, forward_macs, backward_macs


    def _baseline_sample(self, tape, loss, records, forward_macs):
        """A baseline's backward (the C++ BaselineBackward): the whole error flows down to
        the lowest layer that trains; weight gradients of the trained channels, bias
        gradients of the trained biases. A TinyTrain selection sample only measures.
        Returns (skipped, k per trainable unit, grads or None, forward MACs, backward MACs)."""
        import tensorflow as tf

        choice = self._baseline
        selecting = choice.selecting
        n_layers = len(self._layers)
        lowest_unit = self._trainable_index[choice.lowest]
        backward_macs = sum(u.forward_macs for i, u in enumerate(self._units)
                            if not u.trainable and u.input_needs_grad and i > lowest_unit)
        k_out = [0] * n_layers
        kept_rows = self._kept_rows = [None] * n_layers
        grads = [None] * len(self._variables)
        slot = 0
        var_slots = []
        for unit in self._layers:
            var_slots.append(slot)
            slot += len(unit.variables)
        z_of = [records[i][0] for i in self._trainable_index]
        delta_hats = [None] * n_layers
        for l in range(n_layers - 1, choice.lowest - 1, -1):
            unit = self._layers[l]
            z, cut = records[self._trainable_index[l]]
            delta = tape.gradient([loss] + z_of[l + 1:], cut,
                                  output_gradients=[tf.ones_like(loss)] + delta_hats[l + 1:],
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            delta_np = np.asarray(delta, np.float32)
            if not np.all(np.isfinite(delta_np)):
                raise FloatingPointError("gradient is not finite")
            self._ymax[l] = self._policy.update_ymax(total_error(delta_np), self._ymax[l])
            delta_hats[l] = tf.constant(delta_np)
            if selecting:
                choice.accumulate(l, np.asarray(z, np.float32), delta_np)
            else:
                mask = choice.element_mask(l)
                k_out[l] = int(mask.sum())
                kept_rows[l] = np.flatnonzero(mask)
                if choice.weights[l] is not None:
                    masked = tf.constant(delta_np * mask.reshape(delta_np.shape))
                    grads[var_slots[l]] = tape.gradient(z, _tf_variable(unit.kernel), output_gradients=masked)
                    backward_macs += k_out[l] * unit.fan_in
                if choice.bias[l]:
                    grads[var_slots[l] + 1] = tape.gradient(z, _tf_variable(unit.bias),
                                                            output_gradients=delta_hats[l])
            if unit.input_needs_grad and (selecting or l != choice.lowest):
                backward_macs += unit.forward_macs
        if selecting:
            choice.sample_done()
            return True, [0] * n_layers, None, forward_macs, backward_macs
        return False, k_out, grads, forward_macs, backward_macs

    # --- Keras-style API ----------------------------------------------------------------
    def train_step(self, x, y):
        """One update from the batch (x, y); returns a tflm_train.StepResult."""
        import tensorflow as tf

        x, y = self._prepare(x, y)
        n = len(x)
        if n == 0:
            raise ValueError("empty batch")
        lr = self.learning_rate
        sums = [None] * len(self._variables)
        losses = np.zeros(n, np.float32)
        skipped = np.zeros(n, bool)
        ks = np.zeros((n, len(self._layers)), np.int32)
        was_selecting = self._baseline is not None and self._baseline.selecting
        fwd = bwd = trained = 0
        correct = 0.0
        self.last_selection = []
        for s in range(n):
            self._sample = s
            try:
                loss, c, skip, k, grads, f, b = self._train_sample(x[s:s + 1], y[s:s + 1])
            except FloatingPointError:
                if was_selecting:  # as the C++: a refused step restarts TinyTrain's measurement
                    self._baseline.restart_selection()
                raise
            self._spend_budget(b)
            self.last_selection.append(self._kept_rows)
            losses[s], skipped[s], ks[s] = loss, skip, k
            correct += c
            fwd += f
            bwd += b
            if skip:
                continue
            trained += 1
            for i, g in enumerate(grads):
                sums[i] = g if sums[i] is None else sums[i] + g
        if trained > 0:
            scale = tf.constant(float(trained), tf.float32)
            # A baseline leaves parameters without a gradient: they stay as they are.
            pairs = [(g / scale, v) for g, v in zip(sums, self._variables) if g is not None]
            self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        else:
            self.optimizer.iterations.assign_add(1)  # the schedule advances with every batch
        loss = float(np.float32(np.add.accumulate(losses, dtype=np.float32)[-1] / np.float32(n)))
        c = self.counters
        c["steps"] += 1
        c["updates"] += int(trained > 0)
        c["samples"] += n
        c["trained"] += trained
        c["skipped"] += n - trained
        c["forward_macs"] += fwd
        c["backward_macs"] += bwd
        return StepResult(loss=loss, skipped=trained == 0, k=[int(v) for v in ks.sum(0)], forward_macs=int(fwd),
                          backward_macs=int(bwd), selection_ops=0, trained=trained, samples=n,
                          learning_rate=lr, correct=float(correct), sample_loss=losses,
                          sample_skipped=skipped, sample_k=ks)

    def fit(self, x, y, epochs=1, batch_size=1, shuffle=True, verbose=0):
        """MicroTrainer.fit's loop (same shuffling for the same seed); returns a
        dict of per-epoch logs: loss, accuracy (classification), skipped,
        forward_macs, backward_macs."""
        x, y = self._prepare(x, y)
        history = {}
        n = len(x)
        batches = (n + batch_size - 1) // batch_size
        for epoch in range(epochs):
            order = epoch_order(self._seed, self.counters["epochs"], n) if shuffle else np.arange(n)
            loss_sum = correct = skipped = fwd = bwd = 0.0
            for b in range(batches):
                index = order[b * batch_size:(b + 1) * batch_size]
                r = self.train_step(x[index], y[index])
                loss_sum += r.loss * len(index)
                correct += r.correct
                skipped += r.samples - r.trained
                fwd += r.forward_macs
                bwd += r.backward_macs
            self.counters["epochs"] += 1
            logs = {"loss": loss_sum / n}
            if self.loss in _CLASSIFYING:
                logs["accuracy"] = correct / n
            logs.update(skipped=skipped / n, forward_macs=int(fwd), backward_macs=int(bwd))
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4g}" for k, v in logs.items()))
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
        return history

    def predict(self, x, batch_size=None, verbose=0):
        """Model outputs for x (the same layer-by-layer forward the training uses)."""
        x = np.ascontiguousarray(np.asarray(x), np.float32)
        out, _ = self._forward(x)
        return np.asarray(out)

    def evaluate(self, x, y, batch_size=None, verbose=0, return_dict=False):
        """Mean Keras loss (and accuracy for classification losses), as MicroTrainer.evaluate."""
        x, y = self._prepare(x, y)
        out, _ = self._forward(x)
        losses = np.asarray(self._sample_loss(y, out), np.float32).reshape(-1)
        result = {"loss": float(np.mean(losses, dtype=np.float64))}
        if self.loss in _CLASSIFYING:
            result["accuracy"] = float(np.mean(self._correct(y, np.asarray(out)), dtype=np.float64))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else list(result.values())


def micro_weights(model_bytes):
    """{op name: (kernel, bias or None)} of every weight op (FULLY_CONNECTED, CONV_2D,
    DEPTHWISE_CONV_2D) in a trainable .tflite (e.g. MicroTrainer.model_bytes), for
    comparing a trained micro model with the reference. Dense kernels come in Keras'
    layout [in, out] (as always); convolution kernels in TFLite's, as stored: CONV_2D
    OHWI [C_out, KH, KW, C_in] (a Conv1D is a CONV_2D with KH = 1), DEPTHWISE_CONV_2D
    [1, KH, KW, C*mult]. The names of trainable ops are the weight units' ("<layer>/
    depthwise", "<layer>/pointwise" for a SeparableConv2D), so the result goes straight
    into ReferenceTrainer.set_weights and compares with ReferenceTrainer.get_weights("micro");
    a trainable op's bias is the one that trains (possibly an ADD's constant). Returns a
    WeightDict with layout "micro". The compiled trainer reads the file."""
    from .converter import read_model_info

    out = WeightDict(layout="micro")
    for op in read_model_info(model_bytes).ops:
        if op.weights is None:
            continue
        w = np.asarray(op.weights, np.float32).reshape(op.weight_shape).copy()
        b = None if op.bias is None else np.asarray(op.bias, np.float32).copy()
        if op.kind == "FULLY_CONNECTED":
            w = w.T.copy()                                  # [out, in] -> Keras' [in, out]
        out[op.name] = (w, b)
    return out


__all__ = ["ReferenceTrainer", "PolicyArithmetic", "WeightDict", "micro_weights", "total_error", "roundf",
           "clamp_k", "top_k_mask"]
