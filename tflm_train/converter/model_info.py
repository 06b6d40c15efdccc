"""What a trainable .tflite holds: its operators as the trainer runs them, the
trainable layers and the plan. The compiled trainer reads the file (it verifies
and validates it first); this module only shapes its answer for Python."""

from dataclasses import dataclass, field

from ..optimizers import SGD, CosineDecay
from ..policies import policy_from_dict
from .plan_writer import LOSSES

LOSS_NAMES = {int(v): k for k, v in LOSSES.items()}
ACTIVATION_NAMES = ("none", "relu", "relu6")
PADDING_NAMES = ("same", "valid")


@dataclass
class OpInfo:
    kind: str                   # the TFLite builtin operator, e.g. "CONV_2D"
    name: str                   # a weight op's Keras layer (unit), else the output tensor's name
    activation: str
    trainable: bool
    input_shape: tuple
    output_shape: tuple
    weight_shape: tuple = None
    int8: bool = False          # a frozen op of an int8 backbone (TFLite's integer kernel)
    has_bias: bool = False
    bias_size: int = 0          # elements of the bias (0 without one)
    stride: tuple = (1, 1)      # (h, w): convolutions and pooling
    dilation: tuple = (1, 1)
    padding: str = ""           # "same" or "valid": convolutions and pooling
    filter: tuple = (0, 0)      # (h, w): the filter or pooling window
    depth_multiplier: int = 1
    pad_before: tuple = None    # PAD: elements added before / after each input axis
    pad_after: tuple = None
    weights: object = field(default=None, repr=False)  # weight ops: flat copies of the parameters
    bias: object = field(default=None, repr=False)

    @property
    def parameters(self):
        return 0 if self.weight_shape is None else int(_size(self.weight_shape)) + self.bias_size

    @property
    def options(self):
        """The op's window in short, e.g. "3x3/2 same d2" (pads for PAD; else empty)."""
        if self.pad_before is not None:
            return " ".join(f"{b},{a}" for b, a in zip(self.pad_before, self.pad_after))
        if self.filter == (0, 0):
            return ""
        text = f"{self.filter[0]}x{self.filter[1]}/{_pair(self.stride)} {self.padding}"
        if self.dilation != (1, 1):
            text += f" d{_pair(self.dilation)}"
        if self.depth_multiplier > 1:
            text += f" m{self.depth_multiplier}"
        return text


def _pair(hw):
    return str(hw[0]) if hw[0] == hw[1] else f"{hw[0]}x{hw[1]}"


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass
class ModelInfo:
    version: int
    ops: list
    input_shape: tuple
    output_shape: tuple
    loss: str
    optimizer: SGD
    policy: object
    batch_size: int
    state_bytes: int = 0
    memory: dict = field(default_factory=dict)

    @property
    def trainable_layers(self):
        return [op for op in self.ops if op.trainable]

    @property
    def trainable_parameters(self):
        return sum(op.parameters for op in self.trainable_layers)


def _window(o):
    """The geometry fields of a windowed op (convolutions, pooling) or of a PAD."""
    if o["pad_before_after"] is not None:
        return dict(pad_before=tuple(o["pad_before_after"][0]), pad_after=tuple(o["pad_before_after"][1]))
    if o["window"] == (0, 0):
        return {}
    return dict(stride=tuple(o["stride"]), dilation=tuple(o["dilation"]), filter=tuple(o["window"]),
                padding=PADDING_NAMES[o["padding"]], depth_multiplier=o["depth_multiplier"])


def read_model_info(model_bytes):
    """The ModelInfo of a trainable .tflite; raises the trainer's typed errors for
    bytes it does not accept."""
    from .. import _core

    d = _core.describe(bytes(model_bytes))
    ops = []
    for o in d["ops"]:
        name = o["name"]
        if o["layer"] < 0 and o["weights_name"].endswith("/kernel"):  # a frozen weight op: its Keras layer
            name = o["weights_name"][:-len("/kernel")]
        ops.append(OpInfo(
            kind=o["kind"], name=name, activation=ACTIVATION_NAMES[o["activation"]], trainable=o["layer"] >= 0,
            input_shape=tuple(o["input_shape"]), output_shape=tuple(o["output_shape"]),
            weight_shape=None if o["weight_shape"] is None else tuple(o["weight_shape"]),
            has_bias=o["bias"] is not None, bias_size=0 if o["bias"] is None else len(o["bias"]),
            weights=o["weights"], bias=o["bias"], int8=o["int8"], **_window(o)))
    o = d["optimizer"]
    schedule = None
    if o["schedule"] == 1:
        schedule = CosineDecay(o["decay_steps"], alpha=o["alpha"], warmup_steps=o["warmup_steps"],
                               warmup_initial=o["warmup_initial"])
    sgd = SGD(o["learning_rate"], momentum=o["momentum"], weight_decay=o["weight_decay"], schedule=schedule)
    return ModelInfo(version=d["version"], ops=ops, input_shape=tuple(d["input_shape"]),
                     output_shape=tuple(d["output_shape"]), loss=LOSS_NAMES[d["loss"]], optimizer=sgd,
                     policy=policy_from_dict(d["policy"]), batch_size=d["batch_size"],
                     state_bytes=d["state_bytes"], memory=d["memory"])
