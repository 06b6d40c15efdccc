"""tflm-train: convert, inspect, train, compare and export trainable TFLM models."""

import argparse
import os
import sys

import numpy as np

from ._quiet import quiet_tensorflow

LOSSES = ["sparse_categorical_crossentropy", "categorical_crossentropy", "mse", "binary_crossentropy"]


def _count(minimum):
    """An argparse type: a whole number >= minimum."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value
    return parse


def _policy_arg(text):
    from .policies import parse_policy

    try:
        return parse_policy(text)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e))


def _optimizer(args):
    from .optimizers import SGD, CosineDecay

    schedule = None
    if args.cosine_decay_steps:
        schedule = CosineDecay(args.cosine_decay_steps, alpha=args.alpha, warmup_steps=args.warmup_steps)
    return SGD(args.learning_rate, momentum=args.momentum, weight_decay=args.weight_decay, schedule=schedule)


def _add_training_options(p):
    p.add_argument("--loss", required=True, choices=LOSSES, help="the loss the model trains with (required)")
    p.add_argument("--learning-rate", type=float, default=0.05, help="SGD rate, or the cosine peak (default 0.05)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--cosine-decay-steps", type=_count(0), default=0,
                   help="use Keras' CosineDecay over this many batches")
    p.add_argument("--warmup-steps", type=_count(0), default=0, help="linear warm-up batches before the cosine")
    p.add_argument("--alpha", type=float, default=0.0, help="final cosine rate as a fraction of the peak")
    p.add_argument("--batch-size", type=_count(1), default=1, help="samples per update (default 1)")


def _add_data_options(p, epochs):
    p.add_argument("--data", required=True, help="built-in data set (mnist, fashion_mnist, watch, digits) or an .npz with x_train, y_train "
                                                 "(and x_test, y_test) (required)")
    p.add_argument("--epochs", type=_count(1), default=epochs, help=f"passes over the data (default {epochs})")
    p.add_argument("--limit", type=_count(0), default=0, help="use only the first N training samples (0: all)")
    p.add_argument("--test-limit", type=_count(0), default=0, help="use only the first N test samples (0: all)")
    p.add_argument("--seed", type=_count(0), default=0, help="shuffling seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _load_data(spec, limit, test_limit):
    from . import datasets

    if spec.endswith(".npz"):
        train, test = datasets.load_npz(spec)
    else:
        train, test = datasets.load(spec)
    if limit:
        train = (train[0][:limit], train[1][:limit])
    if test is not None and test_limit:
        test = (test[0][:test_limit], test[1][:test_limit])
    return train, test


def _shaped(x, shape, what):
    """Samples reshaped to the model's input shape (flat data fits too), or a clear error."""
    from .errors import InvalidArgumentError

    x = np.asarray(x)
    if len(x) == 0:
        raise InvalidArgumentError(f"{what} holds no samples")
    if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise InvalidArgumentError(f"{what} has samples of shape {tuple(x.shape[1:])} but the model takes "
                                   f"{tuple(shape)}: use data made for this model")
    return x.reshape((len(x),) + tuple(shape))


def _load_keras_model(path):
    import keras

    from .errors import ConversionError

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for files it cannot read
        raise ConversionError(f"cannot load {path} as a Keras model: {e}") from None


def _trainable_arg(values, train_last):
    """--trainable NAME[,NAME...] (or N: the last N weight layers/ops) and --train-last N."""
    if values and train_last:
        raise ValueError("give --trainable or --train-last, not both")
    if train_last:
        return train_last
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if len(names) == 1 and names[0].isdigit():
        return int(names[0])
    return names


def cmd_convert(args):
    from .converter import convert, convert_tflite

    trainable = _trainable_arg(args.trainable, args.train_last)
    options = dict(loss=args.loss, optimizer=_optimizer(args), trainable=trainable, policy=args.policy,
                   batch_size=args.batch_size)
    is_tflite = args.model.lower().endswith(".tflite")
    if is_tflite:
        if args.quantize or args.representative_data:
            raise SystemExit("tflm-train convert: --quantize and --representative-data are for Keras models; a "
                             ".tflite keeps its own quantization")
        out = convert_tflite(args.model, split=args.split, **options)
        output = args.output or os.path.splitext(args.model)[0] + "_trainable.tflite"
    else:
        data = None
        if args.representative_data:
            import numpy as np
            data = np.load(args.representative_data)
            data = data["x_train"] if hasattr(data, "files") else data
        out = convert(_load_keras_model(args.model), quantize=args.quantize, representative_data=data,
                      split=args.split, **options)
        output = args.output or os.path.splitext(args.model)[0] + ".tflite"
    if args.split:
        backbone, out = out
        stem = os.path.splitext(output)[0]
        with open(stem + "_backbone.tflite", "wb") as f:
            f.write(backbone)
        print(f"wrote {stem}_backbone.tflite ({len(backbone)} bytes): the frozen backbone, for TFLM")
    with open(output, "wb") as f:
        f.write(out)
    print(f"wrote {output} ({len(out)} bytes)")


def cmd_inspect(args):
    from . import _core
    from .converter import read_model_info

    with open(args.model, "rb") as f:
        data = f.read()
    report, _ = _core.measure_arena(data, args.batch_size)  # verifies the file first
    info = read_model_info(data)
    print(f"{args.model}: {len(data)} bytes, plan version {info.version}, training state {info.state_bytes} bytes")
    print(f"input {info.input_shape} -> output {info.output_shape}")
    print(f"\n{'#':>3} {'op':<18}{'name':<34}{'window':<14}{'act':<7}{'type':<6}{'output':<18}{'params':>8}  "
          "trainable")
    for i, op in enumerate(info.ops):
        print(f"{i:>3} {op.kind:<18}{op.name[:33]:<34}{op.options[:13]:<14}{op.activation:<7}"
              f"{'int8' if op.int8 else 'float':<6}{str(op.output_shape):<18}{op.parameters:>8}  "
              f"{'yes' if op.trainable else ''}")
    print(f"\ntrainable parameters: {info.trainable_parameters} in {len(info.trainable_layers)} layers")
    print(f"loss: {info.loss}\noptimizer: {info.optimizer!r}\npolicy: {info.policy!r}\n"
          f"planned batch size: {info.batch_size}")
    print(f"\narena bytes at batch size {args.batch_size or info.batch_size}: {report['required_bytes']}")
    for key in ("activation_bytes", "gradient_bytes", "optimizer_bytes", "scratch_bytes", "bookkeeping_bytes"):
        print(f"  {key.replace('_bytes', ''):<12}{report[key]:>10}")


def cmd_train(args):
    from .trainer import MicroTrainer

    (x, y), test = _load_data(args.data, args.limit, args.test_limit)
    trainer = MicroTrainer(args.model, policy=args.policy, batch_size=args.batch_size, seed=args.seed,
                           restore_state=not args.fresh)
    start = trainer.counters
    if start["steps"]:
        print(f"resuming after {start['epochs']} epochs, {start['steps']} steps (--fresh starts over)")
    shape = trainer.info.input_shape[1:]
    x = _shaped(x, shape, "the training data")
    validation = None if test is None else (_shaped(test[0], shape, "the test data"), test[1])
    trainer.check_data(x, y)  # every sample, before the first update
    if validation is not None:
        trainer.check_data(*validation, name="test")
    history = trainer.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=validation,
                          verbose=0 if args.quiet else 1)
    c = trainer.counters
    print(f"policy {trainer.policy!r}: {c['samples'] - start['samples']} samples, "
          f"{c['skipped'] - start['skipped']} skipped, forward MACs {c['forward_macs'] - start['forward_macs']}, "
          f"backward MACs {c['backward_macs'] - start['backward_macs']}")
    if validation is not None:
        print("test: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.history.items() if k.startswith("val_")))
    output = args.output or os.path.splitext(args.model)[0] + "_trained.tflite"
    trainer.save(output)
    print(f"wrote {output}")
    if args.plot:
        from .plots import plot_history

        plot_history(history, args.plot, title=f"{os.path.basename(args.model)}, {trainer.policy!r}")
        print(f"wrote {args.plot}")


def cmd_compare(args):
    from .compare import DEFAULT_POLICIES, compare
    from .errors import InvalidArgumentError

    model = _load_keras_model(args.model)
    (x, y), test = _load_data(args.data, args.limit, args.test_limit)
    if test is None:
        raise InvalidArgumentError("compare needs test data: use a built-in data set or an .npz with "
                                   "x_test/y_test")
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    x, xt = _shaped(x, shape, "the training data"), _shaped(test[0], shape, "the test data")
    result = compare(model, x, y, xt, test[1], loss=args.loss, optimizer=_optimizer(args),
                     policies=args.policies or DEFAULT_POLICIES, epochs=args.epochs, batch_size=args.batch_size,
                     seed=args.seed, verbose=0 if args.quiet else 1)
    print("\n" + result.table())
    paths = result.save_plots(args.out_dir)
    with open(os.path.join(args.out_dir, "compare.json"), "w") as f:
        f.write(result.to_json())
    print("\nplots: " + ", ".join(paths))


def _class_names_arg(text):
    """--class-names: "a,b,c" or "@FILE" with one name per line."""
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8-sig") as f:
                lines = [line.rstrip("\r\n") for line in f]
        except OSError as e:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {e.strerror or e}")
        except UnicodeDecodeError:
            raise argparse.ArgumentTypeError(f"{path} is not UTF-8 text")
        while lines and not lines[-1].strip():
            lines.pop()
        names = [line.strip() for line in lines]
        where = f"of {path}: line"
    else:
        names = [name.strip() for name in text.split(",")]
        where = "of --class-names: name"
    for i, name in enumerate(names):
        if not name:
            raise argparse.ArgumentTypeError(f"empty class name ({where} {i + 1})")
    if not names:
        raise argparse.ArgumentTypeError("no class names given")
    return names


def cmd_export(args):
    from .export import describe_export, output_stem, write_pair

    output = args.output or args.output_option
    if not output or (args.output and args.output_option and args.output != args.output_option):
        raise ValueError("give the output once: tflm-train export MODEL.tflite OUTPUT")
    output_stem(output)  # a bad output is refused before measuring
    info = describe_export(args.model, name=args.name, class_names=args.class_names)
    header, source = write_pair(info, output)
    n = info.name
    print(f"wrote {header} and {source}")
    print(f"  {n}[], {n}_len        {len(info.model_bytes):>9} bytes (writable, 16-byte aligned)")
    print(f"  {n}_trainer_arena_size {info.trainer_arena_size:>9} bytes (batch size {info.batch_size}, "
          f"largest over the four policies)")
    print(f"  {n}_tflm_arena_size    {info.tflm_arena_size:>9} bytes (TFLM allocates in {info.tflm_minimum})")
    classes = f"{info.num_classes} classes" if info.num_classes else f"not classes ({info.loss})"
    print(f"  input {list(info.input_shape)} -> output {list(info.output_shape)}, {classes}"
          + (f", names {', '.join(info.class_names)}" if info.class_names else ""))


def build_parser():
    parser = argparse.ArgumentParser(prog="tflm-train", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", parents=[common], help="Keras model file or .tflite -> trainable .tflite")
    p.add_argument("model", help="a .keras (or .h5) model file, or a float32 or int8 .tflite without a training plan")
    p.add_argument("-o", "--output", help="output .tflite (default: next to the model; MODEL_trainable.tflite "
                                          "for a .tflite)")
    _add_training_options(p)
    p.add_argument("--trainable", nargs="+", metavar="NAME",
                   help="what trains (default: all): Keras layer names, or for a .tflite the weight ops' output "
                        "tensor names (as Netron shows them), separated by spaces or commas; or a number N "
                        "for the last N weight layers/ops")
    p.add_argument("--train-last", type=_count(1), default=None, metavar="N",
                   help="train only the last N weight layers (ops, for a .tflite)")
    p.add_argument("--policy", type=_policy_arg, default=None,
                   help="full (default), static:RATIO, tinyprop[:k=v,...], tinypropv2[:k=v,...], or a baseline: "
                        "lastlayers:N, biasonly, sparseupdate:JSON ('{\"bias_layers\": 3, \"weight_layers\": "
                        "{\"-2\": 0.5}}'), tinytrain[:samples=K,mac_budget=B,memory_budget=BYTES]")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="Keras model: make the layers before the first trainable one an int8 backbone")
    p.add_argument("--representative-data", metavar="FILE",
                   help="with --quantize int8: samples to calibrate on (.npy, or .npz with x_train)")
    p.add_argument("--split", action="store_true",
                   help="also write the frozen backbone as OUTPUT_backbone.tflite; OUTPUT then takes its output")
    p.set_defaults(run=cmd_convert)

    p = sub.add_parser("inspect", parents=[common], help="ops, trainable parameters, plan and arena bytes of a trainable .tflite")
    p.add_argument("model")
    p.add_argument("--batch-size", type=_count(0), default=0, help="arena for this batch size (default: the plan's)")
    p.set_defaults(run=cmd_inspect)

    p = sub.add_parser("train", parents=[common], help="train a trainable .tflite with the C++ trainer (continues a saved run)")
    p.add_argument("model")
    _add_data_options(p, epochs=1)
    p.add_argument("--batch-size", type=_count(1), default=None, help="samples per update (default: the plan's)")
    p.add_argument("--policy", type=_policy_arg, default=None, help="override the plan's policy")
    p.add_argument("--fresh", action="store_true",
                   help="ignore the training state a trained file carries (counters, schedule, momentum, Ymax)")
    p.add_argument("--plot", metavar="FILE", help="write this run's learning curves to FILE (.png)")
    p.add_argument("-o", "--output", help="trained .tflite, with its training state (default: MODEL_trained.tflite)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("compare", parents=[common], help="Keras fit vs the C++ trainer under each policy: table and plots")
    p.add_argument("model", help="a .keras model file (its current weights are the common start)")
    _add_data_options(p, epochs=3)
    _add_training_options(p)
    p.add_argument("--policies", type=_policy_arg, nargs="+", default=None,
                   help="policies as --policy takes them, baselines included (default: full static:0.3 "
                        "tinyprop tinypropv2)")
    p.add_argument("--out-dir", default="compare_out", help="where the table and plots go (default compare_out)")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("export", parents=[common],
                       help="trainable .tflite -> OUTPUT.h + OUTPUT.cpp for a sketch or firmware: the model "
                            "(writable, aligned), arena sizes, shapes, class names",
                       description="Writes OUTPUT.h (constants: arena bytes of tflm_train::Trainer and "
                                   "tflite::MicroInterpreter, batch size, input/output shapes and sizes, class "
                                   "count and names) and OUTPUT.cpp (the model as a writable, 16-byte aligned "
                                   "array, the class names). Both compile unchanged in an Arduino sketch and a "
                                   "CMake firmware.")
    p.add_argument("model", metavar="MODEL.tflite", help="a trainable .tflite (from tflm-train convert or train)")
    p.add_argument("output", nargs="?", metavar="OUTPUT", help="path stem of the pair, e.g. model_data (a .h/.cpp/.cc suffix "
                                             "is dropped)")
    p.add_argument("-o", "--output", dest="output_option", metavar="OUTPUT", help=argparse.SUPPRESS)
    p.add_argument("--name", default="g_model", help="C++ name of the array and prefix of every constant "
                                                      "(default g_model)")
    p.add_argument("--class-names", type=_class_names_arg, metavar="a,b,c|@FILE",
                   help="one name per class (per output for binary_crossentropy): comma-separated, or @FILE "
                        "with one per line")
    p.set_defaults(run=cmd_export)
    return parser


def main(argv=None):
    from .errors import ConversionError, TrainerError

    args = build_parser().parse_args(argv)
    try:
        with quiet_tensorflow(not args.verbose):
            args.run(args)
    except (ConversionError, TrainerError, OSError, ValueError) as e:
        print(f"tflm-train {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
