"""ReferenceTrainer: the algorithm of ALGORITHM.md in Keras/TensorFlow, the oracle
the C++ trainer (MicroTrainer) is checked against.

Everything that is a gradient is computed here with TensorFlow on the Keras model
itself (tf.GradientTape over the layers' own variables), never by the C++:

- Per sample, the model runs layer by layer (training=False: Dropout is the
  identity, as in the converted model). A Dense layer is split into its linear part
  `z = x @ kernel + bias` (its pre-activation, the point where the layer's error
  `delta = dL/dz` is taken) and its activation `a = f(z)`.
- The loss is Keras' own (keras.losses functions). A softmax/sigmoid output carries
  its logits (Keras' `_keras_logits`), so the cross-entropies are computed and
  differentiated in the logits form, as Keras does.
- Backward goes trainable layer by trainable layer, from the output: `delta_L` is
  `dL/dz_L` from the tape; the policy picks `k`; the top-k of `|delta|` (ties: lower
  flat index) gives `delta_hat`; the tape then gives, with `delta_hat` as the output
  gradient of `z_l`, the kernel gradient and the error of the previous trainable layer
  (`dL/dz_{l-1}`, through its activation and any frozen layers in between, dense
  again); the bias gradient takes the dense `delta`.
- Gradients are summed over the batch's trained samples, divided by their number and
  applied with Keras' own SGD (`tflm_train.SGD.to_keras()`), so momentum, weight decay
  and schedules are Keras'. A batch whose samples were all skipped applies nothing,
  but the schedule still advances (`optimizer.iterations` is incremented by hand).

The few scalar decisions the policies make (Y, Ymax, S, k and the TinyPropV2 gate)
are reproduced in float32 with the operations in the order ALGORITHM.md and the C++
use: Y is a sequential float32 sum of |delta| in flat index order, zeta^p is a
repeated float32 product, round is round-half-away-from-zero (C's roundf). That
makes k and the skip decisions comparable exactly; the errors they are computed from
come from TensorFlow, so they can differ from the C++ by float32 rounding.

Effort accounting (ALGORITHM.md): forward MACs are sum(n_in * n_out) over Dense
layers per sample; backward MACs per trainable layer are k * n_in (weight gradient)
plus k * n_in (input gradient, not for the first trainable layer); a frozen Dense
layer after the first trainable layer costs n_out * n_in (dense input gradient).
Frozen Dense layers *behind* the last trainable layer have to be passed before the
last trainable layer's error exists, so they are paid even by a sample the
TinyPropV2 gate then skips (that is the only backward work a skipped sample does;
with the usual "last N layers trainable" there is none). `selection_ops` is always 0:
the reference selects with a stable sort, whose comparison count says nothing about
the C++ quickselect; the C++ reports its own count.

Comparing with another implementation: `ambiguities` lists every decision that
float32 rounding differences in the errors could flip (the k-th and (k+1)-th largest
|delta| within `ambiguity_rtol` * max|delta|, S*n that close to a rounding midpoint, D
that close to tau), and `last_selection` holds the kept indices of the last step. A
real case: a confidently wrong softmax output has two errors |p_c - 1| and p_j that
differ only by the leftover probability, which rounding can reorder.
"""

import math

import numpy as np

from .optimizers import SGD
from .policies import Full, Policy, StaticTopK, TinyProp, TinyPropV2
from .converter.convert import loss_name as _loss_name
from .converter.keras_model import choose_trainable, flat_layers
from .trainer import _CLASSIFYING, StepResult

_PASS_THROUGH = ("InputLayer", "Flatten", "Reshape", "Dropout", "Activation", "ReLU", "Softmax")

_F32 = np.float32


# --- the policies' scalar arithmetic, float32 in ALGORITHM.md's order ---------------

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
            raise TypeError("policy must be Full(), StaticTopK(...), TinyProp(...) or TinyPropV2(...)")
        self.policy = policy
        p = policy.to_dict()
        self.kind = type(policy)
        for key in ("ratio", "s_min", "s_max", "zeta", "ymax_decay", "d_min", "d_max", "beta", "tau"):
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

    def kept(self, n, position, y, ymax):
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

    def gate_trains(self, y_out, ymax_out):
        """TinyPropV2's gate: D > tau (always True for the other policies)."""
        if self.kind is not TinyPropV2:
            return True
        return bool(self.gate_value(y_out, ymax_out)[0] > self.tau)

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


# --- the model as a chain of ops ------------------------------------------------------

def _tf_variable(v):
    """The tf.Variable behind a Keras variable (what a GradientTape watches)."""
    return getattr(v, "value", v)


class _WeightOp:
    """A layer with weights, split into its linear part z and its activation.

    Per-layer facts the step needs: `n_out` (error elements per sample), `fan_in`
    (MACs per kept output element, for both weight and input gradient), and
    `forward_macs` per sample. Convolutions will add their own subclasses.
    """

    def __init__(self, layer):
        self.layer = layer
        self.name = layer.name

    @property
    def variables(self):
        raise NotImplementedError


class _DenseOp(_WeightOp):
    def __init__(self, layer):
        super().__init__(layer)
        self.n_in = int(layer.kernel.shape[0])
        self.n_out = int(layer.kernel.shape[1])
        self.fan_in = self.n_in
        self.forward_macs = self.n_in * self.n_out
        self.frozen_input_grad_macs = self.n_out * self.n_in

    @property
    def kernel(self):
        return self.layer.kernel

    @property
    def bias(self):
        return self.layer.bias if self.layer.use_bias else None

    @property
    def variables(self):
        return [v for v in (self.kernel, self.bias) if v is not None]

    def linear(self, x):
        from keras import ops

        z = ops.matmul(x, self.kernel)
        if self.bias is not None:
            z = ops.add(z, self.bias)
        return z

    def activate(self, z):
        return z if self.layer.activation is None else self.layer.activation(z)


class _PassOp:
    """A layer without weights (activation, reshape, flatten, dropout at inference)."""

    def __init__(self, layer):
        self.layer = layer
        self.name = layer.name

    def __call__(self, x):
        if type(self.layer).__name__ == "Dropout":
            return x
        return self.layer(x, training=False) if type(self.layer).__name__ != "InputLayer" else x


def _build_ops(model):
    ops = []
    for layer in flat_layers(model):
        kind = type(layer).__name__
        if kind == "Dense":
            ops.append(_DenseOp(layer))
        elif kind in _PASS_THROUGH:
            if kind != "InputLayer":
                ops.append(_PassOp(layer))
        else:
            raise ValueError(f"layer '{layer.name}' ({kind}) is not supported by the reference trainer")
    return ops


def _choose_trainable(weight_ops, trainable):
    """Indices into weight_ops, as tflm_train.convert chooses them."""
    chosen = choose_trainable([op.name for op in weight_ops], [op.layer.trainable for op in weight_ops], trainable)
    return [i for i, op in enumerate(weight_ops) if op.name in chosen]


# --- the trainer -------------------------------------------------------------------------

class ReferenceTrainer:
    """Trains a Keras model with ALGORITHM.md's algorithm, in TensorFlow.

    Args:
      model: a built Keras Sequential/Functional chain of Dense, Activation, ReLU,
        Softmax, Flatten, Reshape and Dropout layers. Its weights are updated in place.
      loss: as for tflm_train.convert ("sparse_categorical_crossentropy",
        "categorical_crossentropy", "mse", "binary_crossentropy" or the Keras loss objects).
      optimizer: a tflm_train.SGD (or a keras.optimizers.SGD); the Keras SGD that
        applies the updates is `optimizer.to_keras()`.
      policy: Full(), StaticTopK(...), TinyProp(...) or TinyPropV2(...).
      trainable: None (every Dense layer Keras marks trainable), a list of layer names,
        or an int N (the last N Dense layers), as tflm_train.convert.
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
        self._ops = _build_ops(model)
        weight_ops = [op for op in self._ops if isinstance(op, _WeightOp)]
        if not weight_ops:
            raise ValueError("the model has no Dense layer")
        chosen = _choose_trainable(weight_ops, trainable)
        self._weight_ops = weight_ops
        self._layers = [weight_ops[i] for i in chosen]          # trainable, forward order
        self._variables = [v for op in self._layers for v in op.variables]
        self._tf_variables = [_tf_variable(v) for v in self._variables]
        self._ymax = [_F32(0.0) for _ in self._layers]
        self._rng = np.random.default_rng(seed)
        self.counters = dict(steps=0, updates=0, samples=0, trained=0, skipped=0, forward_macs=0,
                             backward_macs=0, selection_ops=0)
        self.stop_training = False
        # Decisions float32 rounding could flip (see PolicyArithmetic.ambiguities): the
        # exact comparison with another implementation is only meaningful without them.
        self.ambiguity_rtol = 1e-5
        self.ambiguities = []
        self._sample = 0
        self._kept_rows = []
        # Per sample of the last step, per trainable layer: the kept flat indices of the
        # layer's error (None where the sample was skipped before reaching the layer).
        self.last_selection = []

    # --- properties -----------------------------------------------------------------
    @property
    def policy(self):
        return self._policy.policy

    @property
    def ymax(self):
        """TinyProp's running maximum error per trainable layer (float32 values)."""
        return [float(v) for v in self._ymax]

    @ymax.setter
    def ymax(self, values):
        if len(values) != len(self._layers):
            raise ValueError(f"need {len(self._layers)} values, one per trainable layer")
        self._ymax = [_F32(v) for v in values]

    def set_weights(self, weights):
        """Sets Dense layers from {layer name: (kernel [in, out], bias or None)}, e.g.
        micro_weights(MicroTrainer.model_bytes); layers not named keep theirs."""
        for op in self._weight_ops:
            if op.name not in weights:
                continue
            kernel, bias = weights[op.name]
            op.kernel.assign(np.asarray(kernel, np.float32))
            if op.bias is not None:
                op.bias.assign(np.asarray(bias, np.float32))

    @property
    def trainable_layers(self):
        """Names of the trainable layers, in forward order."""
        return [op.name for op in self._layers]

    @property
    def learning_rate(self):
        """The rate the next step will use (Keras' schedule at optimizer.iterations)."""
        from keras import ops

        return float(ops.convert_to_numpy(self.optimizer.learning_rate))

    def reset_policy_state(self):
        """Forgets TinyProp's running maxima."""
        self._ymax = [_F32(0.0) for _ in self._layers]

    # --- forward --------------------------------------------------------------------
    def _forward(self, x):
        """Output and, per weight op, (input, z) in forward order."""
        records = []
        h = x
        for op in self._ops:
            if isinstance(op, _WeightOp):
                z = op.linear(h)
                records.append((h, z))
                h = op.activate(z)
            else:
                h = op(h)
        return h, records

    def _sample_loss(self, y, out):
        """Keras' per-sample loss (logits form for softmax/sigmoid outputs)."""
        return self._loss_fn(y, out)

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

        Returns (loss, correct, skipped, k per layer, grads or None, forward MACs,
        backward MACs)."""
        import tensorflow as tf

        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch(self._tf_variables)
            out, records = self._forward(x)
            loss = self._sample_loss(y, out)
        loss_value = float(np.asarray(loss).reshape(-1)[0])
        correct = float(self._correct(y, out.numpy())[0])
        forward_macs = sum(op.forward_macs for op in self._weight_ops)
        if not math.isfinite(loss_value):
            raise FloatingPointError("loss is not finite")

        index = {id(op): i for i, op in enumerate(self._weight_ops)}
        trainable_positions = [index[id(op)] for op in self._layers]
        last = trainable_positions[-1]
        backward_macs = 0
        # Frozen weight layers behind the last trainable one: passed (densely) to reach it.
        backward_macs += sum(op.frozen_input_grad_macs for op in self._weight_ops[last + 1:])
        n_layers = len(self._layers)
        k_out = [0] * n_layers
        kept_rows = self._kept_rows = [None] * n_layers
        grads = [None] * len(self._variables)
        delta = tape.gradient(loss, records[last][1])
        var_at = 0
        var_slots = []
        for op in self._layers:
            var_slots.append(var_at)
            var_at += len(op.variables)
        for l in range(n_layers - 1, -1, -1):
            op = self._layers[l]
            pos_w = trainable_positions[l]
            z = records[pos_w][1]
            delta_np = np.asarray(delta, np.float32)
            if not np.all(np.isfinite(delta_np)):
                raise FloatingPointError("gradient is not finite")
            y_l = total_error(delta_np)
            position = n_layers - 1 - l
            self._ymax[l] = self._policy.update_ymax(y_l, self._ymax[l])
            if position == 0 and not self._policy.gate_trains(y_l, self._ymax[l]):
                self._note_ambiguities(op, int(delta_np.size), 0, y_l, self._ymax[l], delta_np,
                                       int(delta_np.size), gate_only=True)
                del tape
                return loss_value, correct, True, [0] * n_layers, None, forward_macs, backward_macs
            n = int(delta_np.size)
            k = self._policy.kept(n, position, y_l, self._ymax[l])
            k_out[l] = k
            self._note_ambiguities(op, n, position, y_l, self._ymax[l], delta_np, k)
            mask = top_k_mask(delta_np, k)
            kept_rows[l] = np.flatnonzero(mask.ravel())
            delta_hat = tf.constant(delta_np * mask)
            sources = [_tf_variable(op.kernel)]
            first = l == 0
            if not first:
                sources.append(records[trainable_positions[l - 1]][1])
            got = tape.gradient(z, sources, output_gradients=delta_hat)
            grads[var_slots[l]] = got[0]
            backward_macs += k * op.fan_in                       # weight gradient
            if op.bias is not None:
                grads[var_slots[l] + 1] = tape.gradient(z, _tf_variable(op.bias),
                                                        output_gradients=tf.constant(delta_np))
            if not first:
                backward_macs += k * op.fan_in                   # input gradient
                # Frozen weight layers between this and the previous trainable layer.
                backward_macs += sum(o.frozen_input_grad_macs
                                     for o in self._weight_ops[trainable_positions[l - 1] + 1:pos_w])
                delta = got[1]
        del tape
        return loss_value, correct, False, k_out, grads, forward_macs, backward_macs

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
        fwd = bwd = trained = 0
        correct = 0.0
        self.last_selection = []
        for s in range(n):
            self._sample = s
            loss, c, skip, k, grads, f, b = self._train_sample(x[s:s + 1], y[s:s + 1])
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
            self.optimizer.apply([g / scale for g in sums], self._variables)
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
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            loss_sum = correct = skipped = fwd = bwd = 0.0
            for b in range(batches):
                index = order[b * batch_size:(b + 1) * batch_size]
                r = self.train_step(x[index], y[index])
                loss_sum += r.loss * len(index)
                correct += r.correct
                skipped += r.samples - r.trained
                fwd += r.forward_macs
                bwd += r.backward_macs
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

    def get_weights(self):
        """{layer name: (kernel [in, out], bias or None)} of every Dense layer, as numpy."""
        return {op.name: (np.asarray(op.kernel.numpy()),
                          None if op.bias is None else np.asarray(op.bias.numpy()))
                for op in self._weight_ops}


def micro_weights(model_bytes):
    """{layer name: (kernel [in, out], bias or None)} of every FullyConnected op in a
    trainable .tflite (e.g. MicroTrainer.model_bytes), in Keras' layout, for comparing
    a trained micro model with the reference. Reads the flatbuffer only."""
    from .converter.plan_reader import plan_bytes
    from .plan.TrainingPlan import TrainingPlan
    from .tflite.Model import Model

    model_bytes = bytes(model_bytes)
    raw = plan_bytes(model_bytes)
    if raw is None:
        raise ValueError("this .tflite carries no tflm_train training plan")
    plan = TrainingPlan.GetRootAs(raw, 0)
    model = Model.GetRootAs(model_bytes, 0)
    tensors = model.Subgraphs(0)

    def tensor_values(index):
        t = tensors.Tensors(index)
        buf = model.Buffers(t.Buffer())
        if buf.DataLength() > 0:
            data = buf.DataAsNumpy().tobytes()
        else:
            data = model_bytes[buf.Offset():buf.Offset() + buf.Size()]
        shape = tuple(int(t.Shape(i)) for i in range(t.ShapeLength()))
        return np.frombuffer(data, np.float32).reshape(shape).copy()

    out = {}
    for i in range(plan.OpsLength()):
        op = plan.Ops(i)
        if op.Weights() < 0:
            continue
        w = tensor_values(op.Weights())                     # [out, in]
        b = tensor_values(op.Bias()) if op.Bias() >= 0 else None
        out[(op.Name() or b"").decode()] = (w.T.copy(), b)
    return out


__all__ = ["ReferenceTrainer", "PolicyArithmetic", "micro_weights", "total_error", "roundf", "clamp_k",
           "top_k_mask"]
