"""Warnings: NeuralForecast's, Lightning's and torch's expected ones are
ignored only while a bundle loads or predicts; nothing is silenced
process-wide (the service used to call warnings.filterwarnings("ignore"))."""

from __future__ import annotations

import threading
import warnings

import pytest

from reference_service import bundles
from reference_service.bundles import expected_warnings


def warn_from(module: str, category: type[Warning] = UserWarning) -> None:
    """A warning as if `module` gave it."""
    warnings.warn_explicit("expected noise", category, filename=f"{module.replace('.', '/')}.py", lineno=1,
                           module=module, registry={})


def test_nothing_is_ignored_process_wide(service):
    """After the session's app loaded and predicted with two bundles."""
    assert not [f for f in warnings.filters if f[0] == "ignore" and f[1] is None and f[2] is Warning
                and f[3] is None]
    with pytest.warns(UserWarning):
        warn_from("neuralforecast.core")


@pytest.mark.parametrize("module", ["neuralforecast.core", "neuralforecast.models.rnn", "torch.nn.modules.rnn",
                                    "pytorch_lightning.utilities._pytree", "lightning_fabric.utilities"])
@pytest.mark.parametrize("category", [UserWarning, DeprecationWarning, FutureWarning])
def test_the_libraries_expected_warnings_are_ignored_inside(module, category):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with expected_warnings:
            warn_from(module, category)
        warn_from(module, category)  # outside: shown
    assert len(seen) == 1


@pytest.mark.parametrize("module", ["reference_service.app", "torchvision_like", "numpy", "pandas.core"])
def test_other_warnings_are_shown_inside(module):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with expected_warnings:
            warn_from(module)
            warn_from("neuralforecast.core", RuntimeWarning)  # not an expected category
    assert len(seen) == 2


def test_overlapping_threads_leave_the_filters_as_they_were():
    """warnings.catch_warnings restores a snapshot and so loses or leaks
    filters when threads overlap; expected_warnings adds its filters with
    the first user and removes exactly those with the last."""
    before = list(warnings.filters)
    entered, release = threading.Barrier(5), threading.Event()

    def work():
        with expected_warnings:
            entered.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    entered.wait()
    assert len(warnings.filters) == len(before) + len(bundles._EXPECTED_CATEGORIES)
    release.set()
    for t in threads:
        t.join()
    assert warnings.filters == before
