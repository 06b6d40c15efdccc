"""Trainable .tflite -> a C++ header and source pair for firmware and Arduino sketches.

`<stem>.h` declares the model array and gives, as constants, everything a sketch needs
to set the model up: the arena sizes of tflm_train::Trainer and tflite::MicroInterpreter,
the plan's batch size, the input and output shapes, the class count and (when given)
the class names. `<stem>.cpp` defines the model as a writable, 16-byte aligned array
(it lives in RAM and the trainer updates the weights in place) and the class names.
Both compile unchanged as C++11 or later, in an Arduino sketch folder or a CMake target.

    from tflm_train.export import export
    export("mlp.tflite", "model_data", name="g_model", class_names=["zero", ..., "nine"])
    # -> ("model_data.h", "model_data.cpp")
"""

import contextlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Keywords and alternative tokens of C++ (through C++20) and the names C reserves.
_KEYWORDS = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t
    class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
    decltype default delete do double dynamic_cast else enum explicit export extern false float for friend
    goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private
    protected public register reinterpret_cast requires return short signed sizeof static static_assert
    static_cast struct switch template this thread_local throw true try typedef typeid typename union
    unsigned using virtual void volatile wchar_t while xor xor_eq main NULL
""".split())
SUFFIXES = (".h", ".cpp", ".cc")
CLASS_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")  # softmax over classes
NAMED_OUTPUT_LOSSES = CLASS_LOSSES + ("binary_crossentropy",)  # one name per output value
TFLM_ALIGNMENT_MARGIN = 16  # TFLM aligns the arena's start to 16 bytes and may lose up to 15
_TFLM_PROBE_LIMIT = 256 << 20


@dataclass
class ExportInfo:
    """What export writes into the header, measured and checked."""
    name: str
    model_bytes: bytes
    source: str                 # the .tflite's file name, or None for bytes
    trainable_parameters: int
    loss: str
    batch_size: int
    input_shape: tuple
    output_shape: tuple
    num_classes: int            # 0 unless the output is a softmax over classes
    class_names: tuple          # () when not given
    trainer_arena_size: int     # rounded up to 16
    trainer_bookkeeping: int    # pointer-sized records within it (smaller on 32-bit)
    tflm_arena_size: int        # tflm_minimum + TFLM_ALIGNMENT_MARGIN, rounded up to 16
    tflm_minimum: int           # the smallest arena the pip TFLM runtime allocates the model in

    @property
    def input_size(self):
        return _per_sample(self.input_shape)

    @property
    def output_size(self):
        return _per_sample(self.output_shape)


def _per_sample(shape):
    n = 1
    for d in shape[1:] if len(shape) > 1 else shape:
        n *= int(d)
    return n


def _round16(n):
    return (int(n) + 15) // 16 * 16


def check_name(name):
    """`name` must be a C++ identifier that is neither a keyword nor reserved."""
    from .errors import InvalidArgumentError

    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise InvalidArgumentError(f"--name must be a C identifier (letters, digits, _), got {name!r}")
    if name in _KEYWORDS or name.startswith("__") or re.match(r"_[A-Z]", name) or "__" in name:
        raise InvalidArgumentError(f"--name {name!r} is a C++ keyword or a reserved identifier")
    return name


def check_class_names(class_names, loss, output_size):
    """A tuple of the names, or () for None; refuses names a C string cannot hold and a
    count that differs from the model's outputs."""
    from .errors import InvalidArgumentError

    if class_names is None:
        return ()
    if isinstance(class_names, (str, bytes)):
        raise InvalidArgumentError("class_names must be a list of strings, not one string")
    names = tuple(class_names)
    for i, n in enumerate(names):
        if not isinstance(n, str):
            raise InvalidArgumentError(f"class name {i} is not a string: {n!r}")
        if not n:
            raise InvalidArgumentError(f"class name {i} is empty")
        if "\0" in n:
            raise InvalidArgumentError(f"class name {i} contains a NUL character: {n!r}")
    if loss not in NAMED_OUTPUT_LOSSES:
        raise InvalidArgumentError(f"class names given, but the model's output is not classes (loss {loss})")
    if len(names) != output_size:
        raise InvalidArgumentError(f"{len(names)} class names given, but the model has {output_size} "
                                   f"{'classes' if loss in CLASS_LOSSES else 'outputs'}")
    return names


def c_string(text):
    """`text` as a C/C++ string literal: UTF-8, with everything but printable ASCII as
    octal escapes (which never run into a following digit) and no trigraphs."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif c == "?" and out and out[-1] in ("?", "\\?"):
            out.append("\\?")
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def trainer_arena(model_bytes):
    """(bytes rounded up to 16, bookkeeping bytes): the largest arena tflm_train::Trainer
    needs at the plan's batch size over the plan's policy and the four policies a device
    may select. Verifies the file first (raises the trainer's typed errors)."""
    from . import _core
    from .policies import Full, StaticTopK, TinyProp, TinyPropV2

    data = bytes(model_bytes)
    reports = [_core.measure_arena(data, 0)[0]]  # the plan's own policy; verifies the file
    for policy in (Full(), StaticTopK(0.3), TinyProp(), TinyPropV2()):
        reports.append(_core.measure_arena(data, 0, policy.to_params())[0])
    largest = max(reports, key=lambda r: r["required_bytes"])
    return _round16(largest["required_bytes"]), int(largest["bookkeeping_bytes"])


@contextlib.contextmanager
def _captured_fds():
    """Sends file descriptors 1 and 2 (where TFLM's C++ prints) to a temporary file
    within the block; yields a function that reads what was written."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)

            def text():
                log.seek(0)
                return log.read().decode("utf-8", "replace")

            yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def tflm_arena(model_bytes):
    """(bytes for the header, smallest arena): the smallest arena in which the pip TFLM
    runtime allocates the model, found by bisection with TFLM's log output captured,
    and that plus TFLM_ALIGNMENT_MARGIN, rounded up to 16."""
    from tflite_micro.python.tflite_micro import runtime

    data = bytes(model_bytes)

    def allocates(size):
        try:
            runtime.Interpreter.from_bytes(data, arena_size=size)
            return True
        except RuntimeError:
            return False

    with _captured_fds() as log:
        low, high = 0, 4096  # low never allocates, high does
        while not allocates(high):
            low, high = high, high * 2
            if high > _TFLM_PROBE_LIMIT:
                lines = [s for s in log().splitlines() if s.strip()]
                raise ValueError("the TFLM runtime cannot allocate this model in "
                                 f"{_TFLM_PROBE_LIMIT >> 20} MiB of arena" + (f": {lines[-1]}" if lines else ""))
        while high - low > 1:
            middle = (low + high) // 2
            if allocates(middle):
                high = middle
            else:
                low = middle
    return _round16(high + TFLM_ALIGNMENT_MARGIN), high


def describe_export(model, name="g_model", class_names=None):
    """Checks and measures what export writes: an ExportInfo. `model` is a .tflite path or
    its bytes; a file that is not a trainable model raises the trainer's typed errors."""
    from .converter import read_model_info

    source = None
    if isinstance(model, (str, os.PathLike)):
        source = os.path.basename(os.fspath(model))
        with open(model, "rb") as f:
            model = f.read()
    data = bytes(model)
    check_name(name)
    trainer_size, bookkeeping = trainer_arena(data)  # verifies the file and its training plan
    info = read_model_info(data)
    output_size = _per_sample(info.output_shape)
    names = check_class_names(class_names, info.loss, output_size)
    tflm_size, tflm_minimum = tflm_arena(data)
    return ExportInfo(
        name=name, model_bytes=data, source=source, trainable_parameters=info.trainable_parameters,
        loss=info.loss, batch_size=int(info.batch_size), input_shape=tuple(int(d) for d in info.input_shape),
        output_shape=tuple(int(d) for d in info.output_shape),
        num_classes=output_size if info.loss in CLASS_LOSSES else 0, class_names=names,
        trainer_arena_size=trainer_size, trainer_bookkeeping=bookkeeping, tflm_arena_size=tflm_size,
        tflm_minimum=tflm_minimum)


def output_stem(output):
    """`output` without a .h/.cpp/.cc suffix; refuses a file name #include cannot take."""
    from .errors import InvalidArgumentError

    stem = os.fspath(output)
    root, ext = os.path.splitext(stem)
    if ext.lower() in SUFFIXES:
        stem = root
    base = os.path.basename(stem)
    if not base or base in (".", "..") or any(c in base for c in '"\\<>') or any(ord(c) < 0x20 for c in base):
        raise InvalidArgumentError(f"output {os.fspath(output)!r} does not name a file stem for "
                                   f"<stem>.h and <stem>.cpp")
    return stem


def _guard(header_name):
    guard = re.sub(r"[^A-Za-z0-9]", "_", header_name).upper() + "_"
    guard = re.sub(r"_{2,}", "_", guard)
    return guard if guard[0].isalpha() else "TFLM_TRAIN_" + guard.lstrip("_")


def _ints(values):
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def to_header(info, header_name):
    """The text of `<stem>.h` (header_name is its file name, for the include guard)."""
    n = info.name
    what = f" from {info.source}" if info.source else ""
    guard = _guard(header_name)
    source_name = os.path.splitext(header_name)[0] + ".cpp"
    if info.num_classes:
        classes = "softmax over classes"
    else:
        classes = f"0: the output is not a class distribution (loss {info.loss})"
    lines = [
        f"// Generated by `tflm-train export`{what}: a trainable TFLite model, {len(info.model_bytes)} bytes,",
        f"// {info.trainable_parameters} trainable parameters, loss {info.loss}. Include this header and",
        f"// compile {source_name} (it defines {n}{' and the class names' if info.class_names else ''}) with the "
        "sketch or firmware.",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "// The model: not const and 16-byte aligned, so it lives in RAM and tflm_train::Trainer",
        "// updates the weights in place; a tflite::MicroInterpreter over the same array infers",
        "// with the trained weights.",
        f"extern unsigned char {n}[];",
        f"extern const unsigned int {n}_len;",
        "",
        "// Bytes of arena tflm_train::Trainer needs (the arena must be 16-byte aligned): the",
        "// largest ArenaReport::required_bytes over the Full, StaticTopK, TinyProp and",
        f"// TinyPropV2 policies at batch size {info.batch_size}, rounded up to 16, measured on a 64-bit host.",
        "// Exact on a 64-bit host; an upper bound on a 32-bit microcontroller, where the trainer's",
        f"// pointer-sized bookkeeping ({info.trainer_bookkeeping} of these bytes here) is smaller.",
        f"constexpr unsigned int {n}_trainer_arena_size = {info.trainer_arena_size};",
        "// Bytes of arena tflite::MicroInterpreter needs: the smallest arena the pip TFLM runtime",
        f"// (reference kernels, 64-bit host) allocates this model in, {info.tflm_minimum} bytes (found by",
        f"// bisection), plus {TFLM_ALIGNMENT_MARGIN} for an arena that is not 16-byte aligned, rounded up to 16.",
        "// An upper bound on a 32-bit microcontroller, whose TFLM tensor and node records",
        "// hold 4-byte pointers.",
        f"constexpr unsigned int {n}_tflm_arena_size = {info.tflm_arena_size};",
        "// Samples per update the training plan was made for (the Trainer's default batch size).",
        f"constexpr unsigned int {n}_batch_size = {info.batch_size};",
        "",
        "// One sample in and out, float32; the shapes include the leading batch dimension.",
        f"constexpr int {n}_input_rank = {len(info.input_shape)};",
        f"constexpr int {n}_input_shape[] = {_ints(info.input_shape)};",
        f"constexpr unsigned int {n}_input_size = {info.input_size};  // floats per sample",
        f"constexpr int {n}_output_rank = {len(info.output_shape)};",
        f"constexpr int {n}_output_shape[] = {_ints(info.output_shape)};",
        f"constexpr unsigned int {n}_output_size = {info.output_size};  // floats per sample",
        f"constexpr unsigned int {n}_num_classes = {info.num_classes};  // {classes}",
    ]
    if info.class_names:
        lines += [
            "",
            f"// One name per output value ({len(info.class_names)}), UTF-8.",
            f"extern const char* const {n}_class_names[];",
            f"constexpr bool {n}_has_class_names = true;",
        ]
    else:
        lines += ["", f"constexpr bool {n}_has_class_names = false;  // no {n}_class_names"]
    lines += ["", f"#endif  // {guard}", ""]
    return "\n".join(lines)


def to_source(info, header_name):
    """The text of `<stem>.cpp`: the model as hex bytes, 16 per line, and the class names."""
    n = info.name
    data = info.model_bytes
    what = f" from {info.source}" if info.source else ""
    rows = ["  " + ", ".join(f"0x{b:02x}" for b in data[i:i + 16]) + "," for i in range(0, len(data), 16)]
    lines = [
        f"// Generated by `tflm-train export`{what}: see {header_name}.",
        f'#include "{header_name}"',
        "",
        f"alignas(16) unsigned char {n}[] = {{",
        *rows,
        "};",
        f"const unsigned int {n}_len = {len(data)};",
        f'static_assert(sizeof({n}) == {n}_len, "{n}_len cannot hold the model size: '
        'unsigned int is narrower than 32 bits here");',
    ]
    if info.class_names:
        lines += ["", f"const char* const {n}_class_names[] = {{",
                  *(f"  {c_string(c)}," for c in info.class_names), "};"]
    lines.append("")
    return "\n".join(lines)


def write_pair(info, output):
    """Writes `<stem>.h` and `<stem>.cpp` for an ExportInfo; returns their paths."""
    stem = output_stem(output)
    header, source = stem + ".h", stem + ".cpp"
    header_name = os.path.basename(header)
    header_text, source_text = to_header(info, header_name), to_source(info, header_name)
    if os.path.dirname(stem):
        os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(header, "w", encoding="utf-8", newline="\n") as f:
        f.write(header_text)
    with open(source, "w", encoding="utf-8", newline="\n") as f:
        f.write(source_text)
    return header, source


def export(model, output, name="g_model", class_names=None):
    """Writes `<stem>.h` and `<stem>.cpp` for a trainable .tflite (a path or its bytes);
    `output` is the stem or a path ending in .h/.cpp/.cc. Returns (header, source) paths."""
    output_stem(output)  # refuse a bad output before measuring
    return write_pair(describe_export(model, name=name, class_names=class_names), output)
