"""The baselines' choice of what trains, as the reference trainer makes it
(docs/baselines.md): the same float32 arithmetic in the same order as the C++
trainer's baselines.cc, so both choose the same layers and channels."""

import numpy as np

from .policies import BiasOnly, LastLayers, SparseUpdate, TinyTrain

_F32 = np.float32


def _count(share, n):
    """round(share * n) within [1, n], as the C++ KeptCount (round half away from zero)."""
    kept = np.floor(np.abs(_F32(share) * _F32(n)) + _F32(0.5))
    return int(min(max(kept, 1), n))


class LayerFacts:
    """What the choice reads of one trainable layer (sizes per sample)."""

    def __init__(self, unit, index, channels):
        self.unit = unit
        self.index = index                      # the unit's index among all weight units
        self.n_out, self.fan_in, self.n_in = unit.n_out, unit.fan_in, unit.n_in
        self.channels = channels
        self.positions = self.n_out // channels
        self.n_weights = int(np.prod(unit.keras_shape))
        self.n_bias = 0 if unit.bias is None else int(np.prod(unit.bias.shape))
        self.has_bias = unit.bias is not None


class BaselineChoice:
    """Per trainable layer: whether all, some (a channel mask) or none of its
    weights train, whether its bias trains; the lowest layer that trains; and
    TinyTrain's selection state."""

    def __init__(self, policy, layers, units, full_backward_macs):
        self.policy = policy
        self.layers = layers                    # LayerFacts, forward order
        self.units = units                      # every weight unit, execution order
        self.full_backward_macs = full_backward_macs
        self.choose()

    # --- state ------------------------------------------------------------------------
    def choose(self):
        """The choice when the trainer starts (SparseUpdate: from the weights it starts with)."""
        n = len(self.layers)
        self.weights = ["all"] * n              # "all", "some" or None
        self.bias = [f.has_bias for f in self.layers]
        self.masks = [np.ones(f.channels, bool) for f in self.layers]
        self.seen = 0
        self.fisher = [np.zeros(f.channels, _F32) for f in self.layers]
        p = self.policy
        for l, f in enumerate(self.layers):
            position = n - 1 - l
            if isinstance(p, LastLayers):
                if position >= p.n:
                    self.weights[l], self.bias[l] = None, False
            elif isinstance(p, BiasOnly):
                self.weights[l] = None
            elif isinstance(p, SparseUpdate) and position > 0:
                ratio = p.to_dict(n)["weight_ratios"]
                ratio = ratio[position] if position < len(ratio) else 0.0
                self.bias[l] = f.has_bias and position < p.bias_layers
                self.weights[l] = None
                if ratio > 0.0:
                    count = _count(ratio, f.channels)
                    if count == f.channels:
                        self.weights[l] = "all"
                    else:
                        self.weights[l] = "some"
                        self.masks[l] = self._largest(self._weight_norms(f), count)
        self._set_lowest()

    def restart_selection(self):
        """TinyTrain measures anew from its next samples (the other baselines keep their choice)."""
        if isinstance(self.policy, TinyTrain):
            self.choose()

    @property
    def selecting(self):
        return isinstance(self.policy, TinyTrain) and self.seen < self.policy.samples

    def trains(self, l):
        return self.weights[l] is not None or self.bias[l]

    def _set_lowest(self):
        self.lowest = next((l for l in range(len(self.layers)) if self.trains(l)), len(self.layers) - 1)

    # --- SparseUpdate -----------------------------------------------------------------
    @staticmethod
    def _weight_norms(f):
        """Per channel, the float32 sum of its squared weights in TFLite's storage order."""
        w = f.unit.kernel_in("tflite").astype(_F32)
        if f.unit.kind in ("depthwise", "separable_depthwise"):
            per_channel = w.reshape(-1, f.channels).T   # the channel is the last axis
        else:
            per_channel = w.reshape(f.channels, -1)
        return np.add.accumulate(per_channel * per_channel, axis=1, dtype=_F32)[:, -1]

    @staticmethod
    def _largest(scores, count, mask=None):
        """A mask of the `count` largest scores (the lowest index among equals)."""
        mask = np.zeros(len(scores), bool) if mask is None else mask
        for _ in range(count):
            free = np.where(mask, -np.inf, scores.astype(np.float64))
            mask[int(np.argmax(free))] = True
        return mask

    # --- TinyTrain --------------------------------------------------------------------
    def accumulate(self, l, z, delta):
        """One selection sample's (sum over positions of z * dloss/dz)^2 per channel of layer l,
        z its linear output with its bias."""
        f = self.layers[l]
        product = (np.asarray(z, _F32) * np.asarray(delta, _F32)).reshape(f.positions, f.channels)
        s = np.add.accumulate(product, axis=0, dtype=_F32)[-1]
        self.fisher[l] = (self.fisher[l] + s * s).astype(_F32)

    def sample_done(self):
        self.seen += 1
        if self.seen == self.policy.samples:
            self._select()

    def _input_grad_macs_above(self, unit_index):
        return sum(u.forward_macs for u in self.units[unit_index + 1:] if u.trainable or u.input_needs_grad)

    def _select(self):
        p, layers = self.policy, self.layers
        n, head = len(layers), len(layers) - 1
        two_k = _F32(2.0) * _F32(p.samples)
        delta, potential = [], []
        for l in range(n):
            d = (self.fisher[l] / two_k).astype(_F32)
            delta.append(d)
            potential.append(np.add.accumulate(d, dtype=_F32)[-1] if len(d) else _F32(0))
        params = [_F32(f.n_weights + f.n_bias) for f in layers]
        costs = [_F32(f.n_out * f.fan_in) for f in layers]
        max_params, max_macs = max(params), max(costs)
        limit = _F32(p.mac_budget) * _F32(self.full_backward_macs)
        masks = [np.zeros(f.channels, bool) for f in layers]
        h = layers[head]
        masks[head][:] = True
        macs = h.n_out * h.fan_in + self._input_grad_macs_above(h.index)
        used = 4 * (h.n_weights + h.n_in)
        lowest = head
        visited = {head}
        for _ in range(head):
            best, best_score = -1, _F32(0)
            for l in range(head - 1, -1, -1):
                if l in visited:
                    continue
                score = _F32(potential[l] / ((params[l] / max_params) * (costs[l] / max_macs)))
                if best < 0 or score > best_score:
                    best, best_score = l, score
            visited.add(best)
            f = layers[best]
            per_channel = f.positions * f.fan_in
            propagation = 0
            if best < lowest:
                propagation = (self._input_grad_macs_above(f.index)
                               - self._input_grad_macs_above(layers[lowest].index))
            first = True
            while not masks[best].all():
                c = int(np.argmax(np.where(masks[best], -np.inf, delta[best].astype(np.float64))))
                more = per_channel + (propagation if first else 0)
                more_bytes = 4 * (f.n_weights // f.channels + (f.n_in if first else 0))
                if not _F32(macs + more) <= limit or (p.memory_budget and used + more_bytes > p.memory_budget):
                    break
                masks[best][c] = True
                macs += more
                used += more_bytes
                if first and best < lowest:
                    lowest = best
                first = False
        for l, f in enumerate(layers):
            count = int(masks[l].sum())
            self.masks[l] = masks[l]
            self.weights[l] = None if count == 0 else "all" if count == f.channels else "some"
            self.bias[l] = count > 0 and f.has_bias
        self._set_lowest()

    # --- per sample -------------------------------------------------------------------
    def element_mask(self, l):
        """The layer's error elements whose weight gradients train (all, some, none)."""
        f = self.layers[l]
        if self.weights[l] is None:
            return np.zeros(f.n_out, bool)
        return np.tile(self.masks[l] if self.weights[l] == "some" else np.ones(f.channels, bool), f.positions)
