"""Reads a trainable .tflite back: shapes, ops, trainable layers and the plan.
Uses only the generated FlatBuffers readers (no TensorFlow import), on bytes the
C++ trainer has verified first."""

from dataclasses import dataclass, field

from ..optimizers import SGD, CosineDecay
from ..plan.TrainingPlan import TrainingPlan
from ..policies import Full, policy_from_dict
from ..tflite.Model import Model
from .plan_writer import LOSSES, PLAN_METADATA_NAME

OP_NAMES = ("FullyConnected", "Relu", "Relu6", "Logistic", "Tanh", "Softmax", "Reshape", "Conv2D",
            "DepthwiseConv2D", "MaxPool2D", "AveragePool2D", "Mean", "Pad", "Add")
ACTIVATION_NAMES = ("none", "relu", "relu6")
PADDING_NAMES = ("same", "valid")
LOSS_NAMES = {v: k for k, v in LOSSES.items()}


@dataclass
class OpInfo:
    kind: str
    name: str
    activation: str
    trainable: bool
    input_shape: tuple
    output_shape: tuple
    weight_shape: tuple = None
    has_bias: bool = False
    bias_size: int = 0          # elements of the bias tensor (0 without one)
    stride: tuple = (1, 1)      # (h, w): convolutions and pooling
    dilation: tuple = (1, 1)    # (h, w): convolutions
    padding: str = "valid"      # "same" or "valid": convolutions and pooling
    filter: tuple = (0, 0)      # (h, w): pooling window
    depth_multiplier: int = 1   # DepthwiseConv2D
    pad_before: tuple = None    # Pad: per input axis
    pad_after: tuple = None

    @property
    def parameters(self):
        return 0 if self.weight_shape is None else _size(self.weight_shape) + self.bias_size

    @property
    def options(self):
        """The op's window options in short, e.g. "3x3/2 same d2" (empty for other ops)."""
        if self.kind in ("Conv2D", "DepthwiseConv2D"):
            text = f"{self.weight_shape[1]}x{self.weight_shape[2]}/{_pair(self.stride)} {self.padding}"
            if self.dilation != (1, 1):
                text += f" d{_pair(self.dilation)}"
            if self.depth_multiplier != 1:
                text += f" m{self.depth_multiplier}"
            return text
        if self.kind in ("MaxPool2D", "AveragePool2D"):
            return f"{self.filter[0]}x{self.filter[1]}/{_pair(self.stride)} {self.padding}"
        if self.kind == "Pad":
            return " ".join(f"{b},{a}" for b, a in zip(self.pad_before, self.pad_after))
        return ""


def _pair(hw):
    return str(hw[0]) if hw[0] == hw[1] else f"{hw[0]}x{hw[1]}"


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
    memory: dict = field(default_factory=dict)

    @property
    def trainable_layers(self):
        return [op for op in self.ops if op.trainable]

    @property
    def trainable_parameters(self):
        return sum(op.parameters for op in self.trainable_layers)


def _shape(tensor):
    return tuple(int(tensor.Shape(i)) for i in range(tensor.ShapeLength()))


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def plan_bytes(model_bytes):
    """The raw plan flatbuffer inside a .tflite, or None."""
    model = Model.GetRootAs(model_bytes, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == PLAN_METADATA_NAME.encode():
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def read_model_info(model_bytes):
    """The ModelInfo of a trainable .tflite; raises the trainer's typed errors for
    bytes it does not accept (the Python readers below never see unverified bytes)."""
    from .. import _core

    model_bytes = bytes(model_bytes)
    _core.measure_arena(model_bytes)
    raw = plan_bytes(model_bytes)
    if raw is None:
        raise ValueError("this .tflite carries no tflm_train training plan")
    plan = TrainingPlan.GetRootAs(raw, 0)
    tensors = Model.GetRootAs(model_bytes, 0).Subgraphs(0)
    ops = []
    for i in range(plan.OpsLength()):
        op = plan.Ops(i)
        weights = op.Weights()
        bias_shape = _shape(tensors.Tensors(op.Bias())) if op.Bias() >= 0 else None
        ops.append(OpInfo(
            kind=OP_NAMES[op.Kind()] if op.Kind() < len(OP_NAMES) else f"kind#{op.Kind()}",
            name=(op.Name() or b"").decode(errors="replace"),
            activation=ACTIVATION_NAMES[op.Activation()] if op.Activation() < 3 else "?",
            trainable=bool(op.Trainable()),
            input_shape=_shape(tensors.Tensors(op.Inputs(0))),
            output_shape=_shape(tensors.Tensors(op.Output())),
            weight_shape=_shape(tensors.Tensors(weights)) if weights >= 0 else None,
            has_bias=bias_shape is not None,
            bias_size=_size(bias_shape) if bias_shape is not None else 0,
            stride=(op.StrideH(), op.StrideW()),
            dilation=(op.DilationH(), op.DilationW()),
            padding=PADDING_NAMES[op.Padding()] if op.Padding() < 2 else "?",
            filter=(op.FilterH(), op.FilterW()),
            depth_multiplier=op.DepthMultiplier(),
            pad_before=None if op.PadBeforeIsNone() else tuple(int(v) for v in op.PadBeforeAsNumpy()),
            pad_after=None if op.PadAfterIsNone() else tuple(int(v) for v in op.PadAfterAsNumpy())))
    o = plan.Optimizer()
    if o is None:
        raise ValueError("the training plan has no optimizer")
    schedule = None
    if o.Schedule() == 1:
        schedule = CosineDecay(o.DecaySteps(), alpha=o.Alpha(), warmup_steps=o.WarmupSteps(),
                               warmup_initial=o.WarmupInitial())
    sgd = SGD(o.LearningRate(), momentum=o.Momentum(), weight_decay=o.WeightDecay(), schedule=schedule)
    p = plan.Policy()
    # A plan without a policy table trains with the defaults (Full), as the C++ reads it.
    policy = Full() if p is None else policy_from_dict(dict(kind=p.Kind(), ratio=p.Ratio(), s_min=p.SMin(), s_max=p.SMax(), zeta=p.Zeta(),
                                   ymax_decay=p.YmaxDecay(), d_min=p.DMin(), d_max=p.DMax(), beta=p.Beta(),
                                   tau=p.Tau()))
    m = plan.Memory()
    memory = {} if m is None else dict(
        arena_bytes=m.ArenaBytes(), activation_bytes=m.ActivationBytes(), gradient_bytes=m.GradientBytes(),
        optimizer_bytes=m.OptimizerBytes(), scratch_bytes=m.ScratchBytes())
    return ModelInfo(version=plan.Version(), ops=ops, input_shape=_shape(tensors.Tensors(plan.Input())),
                     output_shape=_shape(tensors.Tensors(plan.Output())), loss=LOSS_NAMES[plan.Loss()],
                     optimizer=sgd, policy=policy, batch_size=plan.BatchSize(), memory=memory)
