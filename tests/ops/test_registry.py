"""Every registered op: forward against numpy float64, float32 forward, gradient by finite differences."""
import importlib
import pkgutil
from pathlib import Path

import pytest

import dragon
from tests.ops import opcase


def _load_cases():
    cases = []
    here = Path(__file__).parent
    for info in pkgutil.iter_modules([str(here)]):
        if info.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"tests.ops.{info.name}").CASES)
    return cases


CASES = _load_cases()
IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward(case):
    opcase.check_forward(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_float32(case):
    opcase.check_forward_float32(case)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad_indices()],
                         ids=[c.id for c in CASES if c.grad_indices()])
def test_gradient(case):
    opcase.check_gradient(case)


def test_case_ids_are_unique():
    assert len(set(IDS)) == len(IDS), sorted({i for i in IDS if IDS.count(i) > 1})


def test_every_registered_op_is_checked():
    covered = {c.op for c in CASES}
    for case in CASES:
        if case.grad_indices():
            covered |= opcase.gradient_op_types(case)
    missing = sorted(set(dragon.ops.names()) - covered)
    assert not missing, f"ops with no case and not exercised by any gradient check: {missing}"
