"""Bundles: the directories `nf.save(path, save_dataset=False)` writes, one per
subdirectory of the model path, loaded once at start."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .errors import ApiError

log = logging.getLogger("reference_service")

# Prediction runs on CPU with no Lightning side output, whatever the bundle was
# trained with; the trainer's root dir is a private temp dir, never the cwd.
_TRAINER_OVERRIDES = dict(
    accelerator="cpu",
    devices=1,
    logger=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    enable_checkpointing=False,
)


def content_hash(path: str) -> str:
    """docs/contract.md: for each regular file directly in the bundle, sorted by
    name bytewise: name, 0x00, size as u64 little-endian, bytes."""
    digest = hashlib.sha256()
    names = sorted(
        (os.fsencode(e.name) for e in os.scandir(path) if e.is_file()),  # follows symlinks
    )
    for name in names:
        with open(os.path.join(os.fsencode(path), name), "rb") as f:
            data = f.read()
        digest.update(name + b"\x00" + len(data).to_bytes(8, "little") + data)
    return "sha256:" + digest.hexdigest()


@dataclass
class Bundle:
    name: str
    nf: Any  # neuralforecast.NeuralForecast
    content_hash: str
    id_col: str
    time_col: str
    target_col: str
    futr_exog: list[str]
    hist_exog: list[str]
    stat_exog: list[str]
    # "safetensors" (NeuralForecast 3.3+) or "pickle" (written before 3.3).
    format: str
    # Categorical columns (NeuralForecast 3.3's categorical_vocab_): name -> values seen at fit.
    categorical: dict = field(default_factory=dict)
    # nf.predict mutates the models (cached trainer, scalers): one call at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def h(self) -> int:
        return self.nf.h

    @property
    def freq(self) -> str | int:
        return self.nf.freq

    def intervals(self) -> dict | None:
        """The conformal calibration level/quantiles are computed from; n_series
        is how many series a request asking for intervals must hold."""
        pi = getattr(self.nf, "prediction_intervals", None)
        if pi is None:
            return None
        n_series = len(self.nf._cs_df) // (pi.n_windows * self.h)
        return {"method": pi.method, "n_windows": pi.n_windows, "step_size": getattr(pi, "step_size", 1),
                "n_series": n_series}  # PredictionIntervals before 3.0 had no step_size

    def describe(self) -> dict:
        return {
            "name": self.name,
            "content_hash": self.content_hash,
            "format": self.format,
            "h": self.h,
            "freq": self.freq,
            "intervals": self.intervals(),
            "categorical": [{"column": c, "values": n} for c, n in self.categorical.items()],
            "models": [
                {
                    "alias": m.alias,
                    "class": type(m).__name__,
                    # The hyperparameter: recurrent models add 1 to the attribute internally.
                    "input_size": int(m.hparams.get("input_size", m.input_size)),
                    "categorical": list(getattr(m, "cat_exog_list", None) or []),
                    "supported": True,  # NeuralForecast itself runs every bundle
                }
                for m in self.nf.models
            ],
        }


def _union(lists) -> list[str]:
    return list(dict.fromkeys(c for cols in lists for c in (cols or [])))


def _quiet_lightning_logs() -> None:
    """Lightning sets its loggers' levels when imported: quiet them after that."""
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


# Warnings NeuralForecast, Lightning and torch give on every load or predict of
# a bundle the service serves as it is: pickle reads of a legacy bundle the
# operator allowed (ALLOW_PICKLE), runtime settings stored in old checkpoints,
# deprecated hyperparameters, Lightning's pytree FutureWarning, torch's
# non-writable array and oneDNN notes. Only these categories, only from these
# packages, only while a load or a predict runs.
_EXPECTED_FROM = r"(neuralforecast|pytorch_lightning|lightning|lightning_fabric|torch)(\.|$)"
_EXPECTED_CATEGORIES = (UserWarning, DeprecationWarning, FutureWarning)


class _ExpectedWarnings:
    """`with expected_warnings:` ignores the libraries' expected warnings
    while it runs. warnings.catch_warnings() swaps the whole filter list and
    is not thread-safe, and loads and predictions of different bundles run in
    threads at once: the filters are added when the first of them starts and
    only those are removed when the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._installed: list[Any] = []

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                for category in _EXPECTED_CATEGORIES:
                    warnings.filterwarnings("ignore", category=category, module=_EXPECTED_FROM)
                self._installed = list(warnings.filters[: len(_EXPECTED_CATEGORIES)])
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                filters = cast("list[Any]", warnings.filters)
                for entry in self._installed:
                    if entry in filters:
                        filters.remove(entry)
                self._installed = []
                # as warnings.filterwarnings does: drop the per-module caches of past decisions
                getattr(warnings, "_filters_mutated", lambda: None)()


expected_warnings = _ExpectedWarnings()


def load_bundle(name: str, path: str, root_dir: str, allow_pickle: bool = False) -> Bundle:
    """allow_pickle: read bundles written before NeuralForecast 3.3 with
    pickle, which executes any code they hold (NeuralForecast 3.3's own
    restricted reader refuses those with fitted local scalers or written by
    2.x); only for bundles from a trusted source, as the service they come
    from loaded them."""
    legacy = not os.path.exists(os.path.join(path, "configuration.json"))
    with expected_warnings:
        from neuralforecast import NeuralForecast  # slow import: keep it off the start path

        _quiet_lightning_logs()
        nf = NeuralForecast.load(path, allow_pickle=allow_pickle and legacy)
    if legacy:
        # NeuralForecast.load takes legacy .ckpt files in directory order:
        # put them in file-name order, as for 3.3 bundles (and the Rust service).
        files = sorted(f for f in os.listdir(path) if f.endswith(".ckpt"))
        order = {"_".join(f.split("_")[:-1]): i for i, f in enumerate(files)}
        nf.models.sort(key=lambda m: order.get(m.alias, len(order)))
    for m in nf.models:
        m.trainer_kwargs.update(_TRAINER_OVERRIDES, default_root_dir=root_dir)
    return Bundle(
        name=name,
        nf=nf,
        content_hash=content_hash(path),
        id_col=nf.id_col,
        time_col=nf.time_col,
        target_col=nf.target_col,
        futr_exog=_union(m.futr_exog_list for m in nf.models),
        hist_exog=_union(m.hist_exog_list for m in nf.models),
        stat_exog=_union(m.stat_exog_list for m in nf.models),
        format="pickle" if legacy else "safetensors",
        categorical={c: len(v) for c, v in (getattr(nf, "categorical_vocab_", None) or {}).items()},
    )


def load_all(model_path: str, root_dir: str, allow_pickle: bool = False) -> dict[str, Bundle]:
    """Every subdirectory of model_path is a bundle (hidden entries skipped);
    any bundle that fails to load fails the start. root_dir: Lightning's
    default_root_dir, a directory the caller owns."""
    names = sorted(
        e.name for e in os.scandir(model_path) if e.is_dir() and not e.name.startswith(".")
    )
    if not names:
        raise RuntimeError(f"no bundle directories in {model_path}")
    bundles = {}
    for name in names:
        bundle = bundles[name] = load_bundle(name, os.path.join(model_path, name), root_dir, allow_pickle)
        log.info("bundle loaded", extra={"bundle": name, "hash": bundle.content_hash, "format": bundle.format,
                                         "models": len(bundle.nf.models)})
    return bundles


def predict(bundle: Bundle, df, futr_df=None, static_df=None, h: int | None = None,
            intervals: dict | None = None) -> list[dict]:
    """nf.predict, then the contract's rows: sorted by unique_id then ds,
    datetime ds as %Y-%m-%dT%H:%M:%S, integer ds as int, numbers as floats.
    h above the bundle's: NeuralForecast's recursive predict(h=...); below
    it: the first h steps (NeuralForecast itself refuses h < its h)."""
    import pandas as pd

    longer = h is not None and h > bundle.h
    with bundle.lock, expected_warnings:
        fc = bundle.nf.predict(df=df, futr_df=futr_df, static_df=static_df, **({"h": h} if longer else {}),
                               **(intervals or {}))
    idc, tc = bundle.id_col, bundle.time_col
    fc = fc.sort_values([idc, tc], kind="stable").reset_index(drop=True)
    if h is not None and h < bundle.h:
        fc = fc.groupby(idc, sort=False).head(h).reset_index(drop=True)
    columns = {idc: fc[idc].tolist()}
    if pd.api.types.is_datetime64_any_dtype(fc[tc]):
        columns[tc] = fc[tc].dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
    else:
        columns[tc] = fc[tc].astype("int64").tolist()
    # By position: nf.predict may name two columns alike (IQLoss levels 99.9
    # and 100 both write -lo-100); like fc.to_dict("records"), the name keeps
    # its first position and its last column's values.
    for j, c in enumerate(fc.columns):
        if c not in (idc, tc):
            values = fc.iloc[:, j].to_numpy(dtype="float64")
            if not np.isfinite(values).all():
                # The history overflowed float32 arithmetic: the client's data, not a bug.
                raise ApiError("non_finite_value", f"the forecast column {c!r} is not finite")
            columns[c] = values.tolist()
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]
