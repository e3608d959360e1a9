"""An API profile (docs/profiles.md): the request and response shapes of the
user's own forecasting service, read from the same TOML file as the Rust
service's `--api-profile`. `to_contract` turns a body of that shape into
docs/contract.md's body; `answer` lays the contract's rows out in the
profile's shape. The default profile is the contract itself."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import ApiError

ORIENTS = ("records", "columns", "split", "values")
REQUEST_DS = ("iso_datetime", "epoch_ms", "epoch_s")
ANSWER_DS = ("iso_datetime", "iso_date", "pandas_iso", "epoch_ms", "epoch_s")


class ProfileError(ValueError):
    """A profile no body could satisfy: the key and the reason."""


@dataclass(frozen=True)
class FrameAt:
    at: str
    orient: str = "records"
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    df: FrameAt = FrameAt("/df")
    futr_df: FrameAt = FrameAt("/futr_df")
    static_df: FrameAt = FrameAt("/static_df")
    h: str = "/h"
    level: str = "/level"
    quantiles: str = "/quantiles"
    model: tuple[str, str] = ("query", "model")  # (query | header | body, name or pointer)
    request_ds: str = "iso_datetime"
    columns: tuple[tuple[str, str], ...] = ()  # (client name, bundle name)
    answer_at: FrameAt = FrameAt("/predictions")
    answer_model: str | None = "/model"
    answer_ds: str = "iso_datetime"
    decimals: int | None = None  # as pandas' to_json(double_precision=N)
    health: dict = field(default_factory=lambda: {"status": "ok"})
    ready: dict = field(default_factory=lambda: {"status": "ready"})
    not_ready: dict = field(default_factory=lambda: {"status": "not_ready"})

    @property
    def is_default(self) -> bool:
        return self == Profile()

    def shadow_answer(self) -> dict:
        """The filter's `shadow.answer` for this profile (wasm-filter/README.md,
        "Answer shapes"): where the answer's frame is, its orient, the client's
        names of the id and time columns, and where the model name is ("" for
        nowhere). The Helm chart derives the same object from the same file."""
        to_client = {b: c for c, b in self.columns}
        answer: dict[str, Any] = {"at": self.answer_at.at, "orient": self.answer_at.orient,
                  "id": to_client.get("unique_id", "unique_id"), "time": to_client.get("ds", "ds"),
                  "model_at": self.answer_model if self.answer_model is not None else ""}
        if self.answer_at.columns:
            answer["columns"] = list(self.answer_at.columns)
        return answer

    # ------------------------------------------------------------ requests

    def model_name(self, query: dict, headers, body: Any) -> str | None:
        kind, key = self.model
        if kind == "query":
            return query.get(key)
        if kind == "header":
            return headers.get(key)
        value = _get(body, key)
        return value if isinstance(value, str) else None

    def to_contract(self, body: Any, time_col: str) -> dict:
        """The contract's body; what it reads is taken out of `body`, so a
        frame at "" is what the other keys leave."""
        out: dict[str, Any] = {}
        for key in ("h", "level", "quantiles"):
            v = _take(body, getattr(self, key))
            if v is not _MISSING:
                out[key] = v
        frames = sorted(("df", "futr_df", "static_df"), key=lambda k: getattr(self, k).at == "")
        for key in frames:
            fa: FrameAt = getattr(self, key)
            v = _take(body, fa.at)
            if v is _MISSING or v is None:
                if key == "df":
                    raise ApiError("invalid_request", f"the body has no frame at {fa.at!r} "
                                                      "(this service's API profile: request.df)")
                continue
            out[key] = self._records(key, v, fa, time_col)
        return out

    def _records(self, key: str, v: Any, fa: FrameAt, time_col: str) -> list[dict]:
        def bad(what: str):
            return ApiError("invalid_request", f"{key} at {fa.at!r} must be {what} (this service's API profile)")

        to_bundle = dict(self.columns)

        def row(pairs) -> dict:
            out = {}
            for c, x in pairs:
                name = to_bundle.get(c, c)
                out[name] = self._request_time(x) if name == time_col else x
            return out

        def named(columns, data) -> list[dict]:
            if not isinstance(data, list):
                raise bad("rows of values")
            rows = []
            for r in data:
                if not isinstance(r, list):
                    raise bad("rows of values")
                if len(r) != len(columns):
                    raise bad(f"rows of {len(columns)} values")
                rows.append(row(zip(columns, r)))
            return rows

        if fa.orient == "records":
            if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
                raise bad("an array of row objects")
            return [row(r.items()) for r in v]
        if fa.orient == "columns":
            if not isinstance(v, dict) or not all(isinstance(a, list) for a in v.values()):
                raise bad("an object of column arrays")
            lengths = {len(a) for a in v.values()}
            if len(lengths) > 1:
                raise bad("columns of one length")
            n = lengths.pop() if lengths else 0
            return [row((k, a[i]) for k, a in v.items()) for i in range(n)]
        if fa.orient == "split":
            columns = v.get("columns") if isinstance(v, dict) else None
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise bad('{"columns": [names], "data": [rows]}')
            return named(columns, v.get("data"))
        return named(fa.columns, v)

    def _request_time(self, x: Any) -> Any:
        """Epoch numbers (request.ds) to the contract's ISO text."""
        scale = {"epoch_ms": 1000, "epoch_s": 1}.get(self.request_ds)
        if scale is None or type(x) is not int:
            return x
        secs, rem = divmod(x, scale)
        try:
            t = _EPOCH + timedelta(seconds=secs, microseconds=rem * (1_000_000 // scale))
        except OverflowError:
            return x
        return t.isoformat(timespec="microseconds" if t.microsecond else "seconds")

    # ------------------------------------------------------------- answers

    def _answer_time(self, ds: Any) -> Any:
        if not isinstance(ds, str):
            return ds  # integer time stamps are written as they are
        t = datetime.fromisoformat(ds)
        if self.answer_ds == "epoch_ms":
            return int(t.replace(tzinfo=UTC).timestamp() * 1000)
        if self.answer_ds == "epoch_s":
            return int(t.replace(tzinfo=UTC).timestamp())
        if self.answer_ds == "iso_date" and t.time() == datetime.min.time():
            return t.strftime("%Y-%m-%d")
        if self.answer_ds == "pandas_iso":
            return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
        return ds

    def answer(self, rows: list[dict], model: str, id_col: str, time_col: str) -> Any:
        to_client = {b: c for c, b in self.columns}
        names = list(rows[0]) if rows else [id_col, time_col]

        def cell(c: str, v: Any) -> Any:
            if c == time_col:
                return self._answer_time(v)
            if self.decimals is not None and isinstance(v, float):
                return round(v, self.decimals)
            return v

        def cells(r: dict) -> list:
            return [cell(c, r[c]) for c in names]

        client = [to_client.get(c, c) for c in names]
        orient = self.answer_at.orient
        if orient == "records":
            frame: Any = [dict(zip(client, cells(r))) for r in rows]
        elif orient == "columns":
            cols = list(zip(*(cells(r) for r in rows))) if rows else [()] * len(client)
            frame = {c: list(v) for c, v in zip(client, cols)}
        elif orient == "split":
            frame = {"columns": client, "index": list(range(len(rows))), "data": [cells(r) for r in rows]}
        else:
            frame = [cells(r) for r in rows]
        root: Any = None
        if self.answer_model is not None:
            root = _set(root, self.answer_model, model)
        return _set(root, self.answer_at.at, frame)


# ---------------------------------------------------------------- the file

_MISSING = object()
_EPOCH = datetime(1970, 1, 1)


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _get(body: Any, pointer: str, missing: Any = None) -> Any:
    """RFC 6901: the value at `pointer`, else `missing`."""
    at = body
    for part in pointer.split("/")[1:] if pointer else []:
        part = _unescape(part)
        if isinstance(at, dict) and part in at:
            at = at[part]
        elif isinstance(at, list) and part.isdigit() and int(part) < len(at):
            at = at[int(part)]
        else:
            return missing
    return at


def _take(body: Any, pointer: str) -> Any:
    """The value at `pointer`, removed from its object (else `_MISSING`)."""
    if not pointer:
        return body
    parent_pointer, last = pointer.rsplit("/", 1)
    parent = _get(body, parent_pointer, missing=_MISSING)
    last = _unescape(last)
    if isinstance(parent, dict):
        return parent.pop(last, _MISSING)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    return _MISSING


def _set(root: Any, pointer: str, value: Any) -> Any:
    if not pointer:
        return value
    if not isinstance(root, dict):
        root = {}
    at = root
    parts = [_unescape(p) for p in pointer.split("/")[1:]]
    for part in parts[:-1]:
        if not isinstance(at.get(part), dict):
            at[part] = {}
        at = at[part]
    at[parts[-1]] = value
    return root


def _pointer(path: str, p: Any, default: str) -> str:
    p = default if p is None else p
    if not isinstance(p, str) or (p and not p.startswith("/")):
        raise ProfileError(f"{path}: {p!r} is not a JSON pointer (\"\" for the whole body, else starting with /)")
    return p


def _known(path: str, table: Any, keys: tuple[str, ...]) -> dict:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: must be a table")
    for k in table:
        if k not in keys:
            raise ProfileError(f"{path}: unknown field `{k}`, expected one of {', '.join(keys)}")
    return table


def _orient(path: str, name: Any, columns: Any) -> tuple[str, tuple[str, ...]]:
    name = "records" if name is None else name
    name = "columns" if name == "list" else name
    if name not in ORIENTS:
        raise ProfileError(f"{path}.orient: {name!r} is not one of {', '.join(ORIENTS)}")
    if name == "values":
        if not columns or not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ProfileError(f'{path}: orient "values" needs the column names: columns = [...]')
        return name, tuple(columns)
    if columns is not None:
        raise ProfileError(f'{path}.columns: only orient "values" names its columns')
    return name, ()


def _frame(path: str, table: Any, default: str) -> FrameAt:
    t = _known(path, table, ("at", "orient", "columns"))
    orient, columns = _orient(path, t.get("orient"), t.get("columns"))
    return FrameAt(_pointer(f"{path}.at", t.get("at"), default), orient, columns)


def _ds(path: str, name: Any, allowed: tuple[str, ...]) -> str:
    name = "iso_datetime" if name is None else name
    if name not in allowed:
        raise ProfileError(f"{path}: {name!r} is not one of {', '.join(allowed)}")
    return name


def _decimals(d: Any) -> int | None:
    if d is None:
        return None
    if type(d) is not int or d < 0:
        raise ProfileError(f"response.decimals: {d!r} is not a number of decimal places")
    if d > 15:
        raise ProfileError(f"response.decimals: {d} is more than a float64 holds (at most 15)")
    return d


def from_toml(text: str) -> Profile:
    try:
        f = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(str(e)) from None
    _known("profile", f, ("request", "columns", "response", "health"))
    d = Profile()
    r = _known("request", f.get("request"),
               ("df", "futr_df", "static_df", "h", "level", "quantiles", "model", "ds"))
    m = _known("request.model", r.get("model"), ("query", "header", "body"))
    if len(m) > 1:
        raise ProfileError("request.model: give one of query, header or body")
    model = d.model
    if m:
        kind, key = next(iter(m.items()))
        if not isinstance(key, str):
            raise ProfileError(f"request.model.{kind}: must be a string")
        model = (kind, key.lower() if kind == "header" else _pointer("request.model.body", key, "")
                 if kind == "body" else key)
    columns = []
    for client, bundle in _known("columns", f.get("columns"), tuple(f.get("columns") or ())).items():
        if not isinstance(bundle, str):
            raise ProfileError(f"columns.{client}: the bundle's column name must be a string, "
                               f"not {type(bundle).__name__}")
        columns.append((client, bundle))
    resp = _known("response", f.get("response"), ("at", "orient", "columns", "model_at", "ds", "decimals"))
    health = _known("health", f.get("health"), ("ok", "ready", "not_ready"))
    model_at = resp.get("model_at", d.answer_model)
    orient, ocols = _orient("response", resp.get("orient"), resp.get("columns"))
    p = Profile(
        df=_frame("request.df", r.get("df"), "/df"),
        futr_df=_frame("request.futr_df", r.get("futr_df"), "/futr_df"),
        static_df=_frame("request.static_df", r.get("static_df"), "/static_df"),
        h=_pointer("request.h", r.get("h"), "/h"),
        level=_pointer("request.level", r.get("level"), "/level"),
        quantiles=_pointer("request.quantiles", r.get("quantiles"), "/quantiles"),
        model=model,
        request_ds=_ds("request.ds", r.get("ds"), REQUEST_DS),
        columns=tuple(columns),
        answer_at=FrameAt(_pointer("response.at", resp.get("at"), "/predictions"), orient, ocols),
        answer_model=None if model_at == "" else _pointer("response.model_at", model_at, ""),
        answer_ds=_ds("response.ds", resp.get("ds"), ANSWER_DS),
        decimals=_decimals(resp.get("decimals")),
        health=health.get("ok", d.health),
        ready=health.get("ready", d.ready),
        not_ready=health.get("not_ready", d.not_ready),
    )
    frames = [("request.df", p.df), ("request.futr_df", p.futr_df), ("request.static_df", p.static_df)]
    for i, (a, fa) in enumerate(frames):
        for b, fb in frames[i + 1:]:
            if fa.at == fb.at:
                raise ProfileError(f"{a} and {b} are both at {fa.at!r}")
    if p.answer_at.at == "" and p.answer_model is not None:
        raise ProfileError('response: a bare answer (at = "") has no place for the model name: set model_at = ""')
    seen = set()
    for client, bundle in p.columns:
        if bundle in seen:
            raise ProfileError(f"columns.{client}: two client columns map to the bundle's {bundle!r}")
        seen.add(bundle)
    return p


def load(path: str) -> Profile:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise ProfileError(f"{path}: cannot read: {e}") from None
    try:
        return from_toml(text)
    except ProfileError as e:
        raise ProfileError(f"{path}: {e}") from None
