"""tflm-train: convert, inspect, train, compare and export trainable TFLM models."""

import argparse
import os
import sys

import numpy as np


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
    p.add_argument("--loss", default="sparse_categorical_crossentropy",
                   choices=["sparse_categorical_crossentropy", "categorical_crossentropy", "mse",
                            "binary_crossentropy"])
    p.add_argument("--learning-rate", type=float, default=0.05, help="SGD rate, or the cosine peak (default 0.05)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--cosine-decay-steps", type=int, default=0, help="use Keras' CosineDecay over this many batches")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up batches before the cosine")
    p.add_argument("--alpha", type=float, default=0.0, help="final cosine rate as a fraction of the peak")
    p.add_argument("--batch-size", type=int, default=1, help="samples per update (default 1)")


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


def cmd_convert(args):
    import keras

    from .converter import convert

    model = keras.models.load_model(args.model, compile=False)
    trainable = args.trainable or (args.train_last or None)
    out = convert(model, loss=args.loss, optimizer=_optimizer(args), trainable=trainable, policy=args.policy,
                  batch_size=args.batch_size)
    output = args.output or os.path.splitext(args.model)[0] + ".tflite"
    with open(output, "wb") as f:
        f.write(out)
    print(f"wrote {output} ({len(out)} bytes)")


def cmd_inspect(args):
    from . import _core
    from .converter import read_model_info

    with open(args.model, "rb") as f:
        data = f.read()
    report = _core.measure_arena(data, args.batch_size)  # verifies the file first
    info = read_model_info(data)
    print(f"{args.model}: {len(data)} bytes, plan version {info.version}")
    print(f"input {info.input_shape} -> output {info.output_shape}")
    print(f"\n{'#':>3} {'op':<16}{'name':<34}{'options':<18}{'act':<7}{'output':<18}{'params':>8}  trainable")
    for i, op in enumerate(info.ops):
        print(f"{i:>3} {op.kind:<16}{op.name[:33]:<34}{op.options[:17]:<18}{op.activation:<7}"
              f"{str(op.output_shape):<18}{op.parameters:>8}  {'yes' if op.trainable else ''}")
    print(f"\ntrainable parameters: {info.trainable_parameters} in {len(info.trainable_layers)} layers")
    print(f"loss: {info.loss}\noptimizer: {info.optimizer!r}\npolicy: {info.policy!r}\n"
          f"planned batch size: {info.batch_size}")
    print(f"\narena bytes at batch size {args.batch_size or info.batch_size}: {report['required_bytes']}")
    for key in ("activation_bytes", "gradient_bytes", "optimizer_bytes", "scratch_bytes", "bookkeeping_bytes"):
        print(f"  {key.replace('_bytes', ''):<12}{report[key]:>10}")


def cmd_train(args):
    from .trainer import MicroTrainer

    (x, y), test = _load_data(args.data, args.limit, args.test_limit)
    trainer = MicroTrainer(args.model, policy=args.policy, batch_size=args.batch_size, seed=args.seed)
    x = x.reshape((len(x),) + tuple(trainer.info.input_shape[1:]))
    validation = None
    if test is not None:
        validation = (test[0].reshape((len(test[0]),) + tuple(trainer.info.input_shape[1:])), test[1])
    history = trainer.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=validation,
                          verbose=0 if args.quiet else 1)
    c = trainer.counters
    print(f"policy {trainer.policy!r}: {c['samples']} samples, {c['skipped']} skipped, "
          f"forward MACs {c['forward_macs']}, backward MACs {c['backward_macs']}")
    if validation is not None:
        print("test: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.history.items() if k.startswith("val_")))
    output = args.output or os.path.splitext(args.model)[0] + "_trained.tflite"
    trainer.save(output)
    print(f"wrote {output}")


def cmd_compare(args):
    import keras

    from .compare import DEFAULT_POLICIES, compare

    model = keras.models.load_model(args.model, compile=False)
    (x, y), test = _load_data(args.data, args.limit, args.test_limit)
    if test is None:
        raise SystemExit("compare needs test data: use a built-in data set or an .npz with x_test/y_test")
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    x, xt = x.reshape((len(x),) + shape), test[0].reshape((len(test[0]),) + shape)
    result = compare(model, x, y, xt, test[1], loss=args.loss, optimizer=_optimizer(args),
                     policies=args.policies or DEFAULT_POLICIES, epochs=args.epochs, batch_size=args.batch_size,
                     seed=args.seed, verbose=0 if args.quiet else 1)
    print("\n" + result.table())
    paths = result.save_plots(args.out_dir)
    with open(os.path.join(args.out_dir, "compare.json"), "w") as f:
        f.write(result.to_json())
    print("\nplots: " + ", ".join(paths))


def cmd_export(args):
    from .export import export

    size = export(args.model, args.output, name=args.name)
    print(f"wrote {args.output} ({size} bytes as {args.name}[], {args.name}_len)")


def build_parser():
    parser = argparse.ArgumentParser(prog="tflm-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", help="Keras model file -> trainable .tflite")
    p.add_argument("model", help="a .keras (or .h5) model file")
    p.add_argument("-o", "--output", help="output .tflite (default: next to the model)")
    _add_training_options(p)
    p.add_argument("--trainable", nargs="+", metavar="LAYER", help="names of the layers to train (default: all)")
    p.add_argument("--train-last", type=int, default=0, metavar="N", help="train only the last N weight layers")
    p.add_argument("--policy", type=_policy_arg, default=None,
                   help="full (default), static:RATIO, tinyprop[:k=v,...], tinypropv2[:k=v,...]")
    p.set_defaults(run=cmd_convert)

    p = sub.add_parser("inspect", help="ops, trainable parameters, plan and arena bytes of a trainable .tflite")
    p.add_argument("model")
    p.add_argument("--batch-size", type=int, default=0, help="arena for this batch size (default: the plan's)")
    p.set_defaults(run=cmd_inspect)

    p = sub.add_parser("train", help="train a trainable .tflite with the C++ trainer")
    p.add_argument("model")
    p.add_argument("--data", default="mnist", help="built-in data set (mnist) or an .npz file")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=None, help="samples per update (default: the plan's)")
    p.add_argument("--policy", type=_policy_arg, default=None, help="override the plan's policy")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training samples")
    p.add_argument("--test-limit", type=int, default=0, help="use only the first N test samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", help="trained .tflite (default: MODEL_trained.tflite)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("compare", help="Keras fit vs the C++ trainer under each policy: table and plots")
    p.add_argument("model", help="a .keras model file (its current weights are the common start)")
    p.add_argument("--data", default="mnist", help="built-in data set (mnist) or an .npz with a test split")
    _add_training_options(p)
    p.add_argument("--policies", type=_policy_arg, nargs="+", default=None,
                   help="default: full static:0.3 tinyprop tinypropv2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="compare_out")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("export", help="trainable .tflite -> C/C++ source (aligned, writable array) for firmware")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True, help="output source file, e.g. model_data.cc")
    p.add_argument("--name", default="g_model", help="array name (default g_model)")
    p.set_defaults(run=cmd_export)
    return parser


def main(argv=None):
    from .errors import ConversionError, TrainerError

    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ConversionError, TrainerError, FileNotFoundError, ValueError) as e:
        print(f"tflm-train {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
