"""Reads a trainable .tflite back: shapes, ops, trainable layers and the plan.
Uses only the generated FlatBuffers readers (no TensorFlow import). Call it on
bytes the C++ trainer has verified, or be ready for ValueError."""

from dataclasses import dataclass, field

from ..optimizers import SGD, CosineDecay
from ..plan.TrainingPlan import TrainingPlan
from ..policies import policy_from_dict
from ..tflite.Model import Model
from .plan_writer import LOSSES, PLAN_METADATA_NAME

OP_NAMES = ("FullyConnected", "Relu", "Relu6", "Logistic", "Tanh", "Softmax", "Reshape")
ACTIVATION_NAMES = ("none", "relu", "relu6")
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

    @property
    def parameters(self):
        if self.weight_shape is None:
            return 0
        n = 1
        for d in self.weight_shape:
            n *= d
        return n + (self.weight_shape[0] if self.has_bias else 0)


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


def plan_bytes(model_bytes):
    """The raw plan flatbuffer inside a .tflite, or None."""
    model = Model.GetRootAs(model_bytes, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == PLAN_METADATA_NAME.encode():
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def read_model_info(model_bytes):
    model_bytes = bytes(model_bytes)
    raw = plan_bytes(model_bytes)
    if raw is None:
        raise ValueError("this .tflite carries no tflm_train training plan")
    plan = TrainingPlan.GetRootAs(raw, 0)
    tensors = Model.GetRootAs(model_bytes, 0).Subgraphs(0)
    ops = []
    for i in range(plan.OpsLength()):
        op = plan.Ops(i)
        weights = op.Weights()
        ops.append(OpInfo(
            kind=OP_NAMES[op.Kind()] if op.Kind() < len(OP_NAMES) else f"kind#{op.Kind()}",
            name=(op.Name() or b"").decode(errors="replace"),
            activation=ACTIVATION_NAMES[op.Activation()] if op.Activation() < 3 else "?",
            trainable=bool(op.Trainable()),
            input_shape=_shape(tensors.Tensors(op.Inputs(0))),
            output_shape=_shape(tensors.Tensors(op.Output())),
            weight_shape=_shape(tensors.Tensors(weights)) if weights >= 0 else None,
            has_bias=op.Bias() >= 0))
    o = plan.Optimizer()
    schedule = None
    if o.Schedule() == 1:
        schedule = CosineDecay(o.DecaySteps(), alpha=o.Alpha(), warmup_steps=o.WarmupSteps(),
                               warmup_initial=o.WarmupInitial())
    sgd = SGD(o.LearningRate(), momentum=o.Momentum(), weight_decay=o.WeightDecay(), schedule=schedule)
    p = plan.Policy()
    policy = policy_from_dict(dict(kind=p.Kind(), ratio=p.Ratio(), s_min=p.SMin(), s_max=p.SMax(), zeta=p.Zeta(),
                                   ymax_decay=p.YmaxDecay(), d_min=p.DMin(), d_max=p.DMax(), beta=p.Beta(),
                                   tau=p.Tau()))
    m = plan.Memory()
    memory = {} if m is None else dict(
        arena_bytes=m.ArenaBytes(), activation_bytes=m.ActivationBytes(), gradient_bytes=m.GradientBytes(),
        optimizer_bytes=m.OptimizerBytes(), scratch_bytes=m.ScratchBytes())
    return ModelInfo(version=plan.Version(), ops=ops, input_shape=_shape(tensors.Tensors(plan.Input())),
                     output_shape=_shape(tensors.Tensors(plan.Output())), loss=LOSS_NAMES[plan.Loss()],
                     optimizer=sgd, policy=policy, batch_size=plan.BatchSize(), memory=memory)
