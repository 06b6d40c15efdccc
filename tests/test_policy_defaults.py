"""benchmarks/policy_defaults.py: the smallest sweep end to end (one small task)."""

import importlib.util
import os

import pytest

from tflm_train import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_sweep_on_one_task(capfd):
    try:
        datasets.load("digits")
    except RuntimeError as e:
        pytest.skip(str(e))
    spec = importlib.util.spec_from_file_location("policy_defaults",
                                                  os.path.join(ROOT, "benchmarks", "policy_defaults.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main(["--quick", "--datasets", "digits", "--settings", "scratch"])
    out = capfd.readouterr().out
    assert len(summary) == len(module.QUICK_TINYPROP_GRID) + len(module.QUICK_TINYPROPV2_GRID)
    for mean_loss, worst, effort in summary.values():
        assert worst >= mean_loss and 0.0 < effort <= 1.0
    assert "TinyProp:" in out and "TinyPropV2:" in out and "1 task(s)" in out
