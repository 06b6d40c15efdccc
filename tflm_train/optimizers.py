"""The optimizer a trainable model carries: Keras' SGD and learning-rate schedules.

The C++ trainer applies exactly Keras' update: `v <- m*v - lr*g; w <- w + v`
(`w <- w - lr*g` without momentum), with weight decay as Keras applies it,
`w <- w - w*wd*lr` before the gradient step (equal to L2 in the gradient when
momentum is 0). The schedule advances with every batch seen.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CosineDecay:
    """Keras' CosineDecay with optional linear warm-up, as a schedule for `SGD`.

    The rate warms up linearly from `warmup_initial` to the SGD learning rate over
    `warmup_steps` batches, then follows a cosine from that peak to
    `alpha * peak` over `decay_steps` batches and stays there.
    """

    decay_steps: int
    alpha: float = 0.0
    warmup_steps: int = 0
    warmup_initial: float = 0.0

    def __post_init__(self):
        if int(self.decay_steps) != self.decay_steps or self.decay_steps <= 0:
            raise ValueError(f"decay_steps must be a positive integer, got {self.decay_steps!r}")
        if int(self.warmup_steps) != self.warmup_steps or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if not math.isfinite(self.warmup_initial):
            raise ValueError("warmup_initial must be finite")

    def rate(self, peak, step):
        """The learning rate at `step` batches seen (float64, for plots and docs)."""
        if self.warmup_steps and step < self.warmup_steps:
            return (peak - self.warmup_initial) * (step / self.warmup_steps) + self.warmup_initial
        t = min(step - self.warmup_steps, self.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * t / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def to_keras(self, peak):
        import keras

        if self.warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                self.warmup_initial, self.decay_steps, alpha=self.alpha, warmup_target=peak,
                warmup_steps=self.warmup_steps)
        return keras.optimizers.schedules.CosineDecay(peak, self.decay_steps, alpha=self.alpha)


# keras.optimizers.SGD options beyond learning rate, momentum and weight decay.
_UNSUPPORTED_KERAS_OPTIONS = ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "loss_scale_factor",
                              "gradient_accumulation_steps")


class SGD:
    """Stochastic gradient descent with Keras' semantics, run by the C++ trainer.

    Args:
      learning_rate: the constant rate, or the peak of `schedule`. A Keras
        `CosineDecay` schedule is accepted too and converted.
      momentum: in [0, 1).
      weight_decay: >= 0, applied as Keras applies it.
      schedule: None (constant) or a `tflm_train.CosineDecay`.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, weight_decay=0.0, schedule=None):
        if not isinstance(learning_rate, (int, float)):
            learning_rate, schedule = _from_keras_schedule(learning_rate, schedule)
        if not (math.isfinite(learning_rate) and learning_rate >= 0):
            raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        if schedule is not None and not isinstance(schedule, CosineDecay):
            raise TypeError("schedule must be None or tflm_train.CosineDecay")
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.schedule = schedule

    def rate(self, step):
        return self.learning_rate if self.schedule is None else self.schedule.rate(self.learning_rate, step)

    def to_keras(self):
        """An equivalent keras.optimizers.SGD (for reference training)."""
        import keras

        lr = self.learning_rate if self.schedule is None else self.schedule.to_keras(self.learning_rate)
        return keras.optimizers.SGD(learning_rate=lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay or None)

    @classmethod
    def from_keras(cls, optimizer):
        """Reads a keras.optimizers.SGD (no Nesterov) into a tflm_train.SGD."""
        import keras

        if not isinstance(optimizer, keras.optimizers.SGD):
            raise TypeError(f"only SGD trains on the device, got {type(optimizer).__name__}")
        # Options the device does not implement are refused, never dropped.
        config = optimizer.get_config()
        unsupported = {key: config.get(key) for key in _UNSUPPORTED_KERAS_OPTIONS
                       if config.get(key) not in (None, False)}
        if optimizer.nesterov:
            unsupported["nesterov"] = True
        if unsupported:
            raise ValueError(f"the Keras SGD sets {', '.join(f'{k}={v}' for k, v in unsupported.items())}, which "
                             "the on-device trainer does not implement; remove it (the trainer refuses any step "
                             "that would write NaN/Inf instead of clipping)")
        lr = optimizer._learning_rate
        if not isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            lr = float(keras.ops.convert_to_numpy(lr))
        return cls(lr, momentum=float(optimizer.momentum), weight_decay=float(optimizer.weight_decay or 0.0))

    def __repr__(self):
        return (f"SGD(learning_rate={self.learning_rate}, momentum={self.momentum}, "
                f"weight_decay={self.weight_decay}, schedule={self.schedule})")


def _from_keras_schedule(schedule, own_schedule):
    import keras

    if own_schedule is not None or not isinstance(schedule, keras.optimizers.schedules.CosineDecay):
        raise TypeError("learning_rate must be a number or a keras CosineDecay schedule")
    c = schedule.get_config()
    if c.get("warmup_target") is not None:
        return float(c["warmup_target"]), CosineDecay(
            int(c["decay_steps"]), alpha=float(c["alpha"]), warmup_steps=int(c["warmup_steps"]),
            warmup_initial=float(c["initial_learning_rate"]))
    return float(c["initial_learning_rate"]), CosineDecay(int(c["decay_steps"]), alpha=float(c["alpha"]))
