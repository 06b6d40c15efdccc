"""Keeps TensorFlow's log output off the terminal unless asked for (`--verbose`).

TensorFlow and its TFLite converter log from C++ straight to file descriptor 2,
before and regardless of Python's logging; only redirecting that descriptor
silences them. Python's own sys.stderr keeps the terminal, so tflm_train's
warnings and errors still show.
"""

import contextlib
import faulthandler
import logging
import os
import sys
import warnings

_LOGGERS = ("tensorflow", "absl", "keras", "h5py")


@contextlib.contextmanager
def quiet_tensorflow(enabled=True):
    """Within the block: TensorFlow's C++ and Python logging and warnings are dropped;
    everything is as before afterwards."""
    if not enabled:
        yield
        return
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    sys.stderr.flush()
    terminal = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1)
    os.dup2(devnull, 2)
    crash_report = faulthandler.is_enabled()
    faulthandler.enable(file=sys.stderr)  # a crash still shows on the terminal
    try:
        with warnings.catch_warnings():
            for module in ("tensorflow", "keras", "absl", "google", "h5py", "tflite_micro"):
                warnings.filterwarnings("ignore", module=module)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        faulthandler.disable()
        sys.stderr.close()
        sys.stderr = python_stderr
        if crash_report:
            try:
                faulthandler.enable()
            except (OSError, ValueError):  # a sys.stderr without a file descriptor (a capturing test runner)
                faulthandler.enable(file=sys.__stderr__)
        os.close(terminal)
        os.close(devnull)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)
        if level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
