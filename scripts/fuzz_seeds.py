#!/usr/bin/env python3
"""Seed corpora for the cargo-fuzz targets, made from the committed fixtures
(nothing committed under fuzz/corpus: `make fuzz` writes them to OUT)."""

import json
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures"


def write(d: Path, name: str, data: bytes) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main(out: Path) -> None:
    cases = sorted((FIX / "cases").glob("*.json"))
    for c in cases:
        case = json.loads(c.read_text())
        body = json.dumps(case["request"]).encode()
        write(out / "predict_body", c.stem, body)
        answer = json.dumps(case["expected"]).encode()
        near = json.dumps({"model": case["expected"]["model"], "predictions": [
            {k: (v * 1.00001 if isinstance(v, float) else v) for k, v in row.items()}
            for row in case["expected"]["predictions"]]}).encode()
        write(out / "comparator", c.stem, b"\x01\x01" + answer + b"\xff" + near)
        write(out / "comparator", c.stem + "_err", b"\x00\x01" + b'{"error":{"code":"timeout","message":"x"}}'
              + b"\xff" + answer)
    for b in sorted((FIX / "bundles").iterdir()):
        for f in sorted(b.iterdir()):
            if f.suffix == ".safetensors" and f.stat().st_size <= 32 * 1024:
                write(out / "bundle_loader", f"{b.name}_{f.stem}", b"\x00" + f.read_bytes())
            elif f.name == "configuration.json":
                write(out / "bundle_loader", f"{b.name}_config", b"\x01" + f.read_bytes())
    legacy = FIX / "legacy" / "bundles"
    for b in sorted(legacy.iterdir()) if legacy.is_dir() else []:
        for f in sorted(b.iterdir()):
            if f.suffix == ".ckpt" and f.stat().st_size <= 32 * 1024:
                write(out / "legacy_bundle", f"{b.name}_{f.stem}", b"\x02" + f.read_bytes())
                with zipfile.ZipFile(f) as z:
                    pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
                    write(out / "legacy_bundle", f"{b.name}_{f.stem}_pkl", b"\x81" + z.read(pkl))
            elif f.name == "configuration.pkl":
                write(out / "legacy_bundle", f"{b.name}_config", b"\x01" + f.read_bytes())
    configs = [REPO / "wasm-filter" / "config.example.json"] + sorted(
        (REPO / "deploy" / "local" / "envoy").glob("*.json"))
    for i, p in enumerate(configs):
        write(out / "filter_config", f"config{i}", p.read_bytes())
    write(out / "filter_config", "minimal", json.dumps({
        "rust_weight_bp": 2500, "sticky_header": "x-user-id",
        "backends": {"python": {"cluster": "py", "authority": "py.local"},
                     "rust": {"cluster": "rs", "authority": "rs.local:8080"}},
        "breaker": {"failure_threshold": 5, "recovery_ms": 1000},
        "shadow": {"share_bp": 10000, "strip_headers": ["authorization"], "rel_tolerance": 1e-4}}).encode())
    for i, s in enumerate(["D|2024-01-31", "MS|2024-02-29T00:00:00", "h|2024-01-01 06:00", "W|2023-12-31",
                           "W-WED|2024-03-06", "QS|2024-01-01", "ME|2024-02-29", "YE|2023-12-31",
                           "15min|2024-01-01T00:15:00", "B|2024-01-05", "2h|2024-01-01T01:00:00.5"]):
        write(out / "dates", f"d{i}", s.encode())


def profile_seeds(out: Path) -> None:
    """Seeds of the API profile targets, from tests/profiles/ and the golden answers."""
    # profile_body: byte 0 even, a profile file; odd, a body for the team profiles.
    for d in sorted(p for p in (REPO / "tests" / "profiles").iterdir() if (p / "profile.toml").is_file()):
        write(out / "profile_body", d.name + "_toml", b"\x00" + (d / "profile.toml").read_bytes())
        body = json.loads((d / "example.json").read_text())["body"]
        write(out / "profile_body", d.name + "_body", b"\x01" + json.dumps(body).encode())

    # comparator_shaped: byte 0 picks the shape, in the order of shapes() in
    # fuzz/fuzz_targets/comparator_shaped.rs.
    def shaped(i, model, rows):
        cols = list(rows[0]) if rows else ["unique_id", "ds"]
        names = {"unique_id": "series", "ds": "timestamp"}
        lists = {c: [r.get(c) for r in rows] for c in cols}
        split = {"columns": cols, "index": list(range(len(rows))),
                 "data": [[r.get(c) for c in cols] for r in rows]}
        def values(n):
            return [[r[cols[0]], r[cols[1]]] + ([r[c] for c in cols[2:]] * n)[:n] for r in rows]

        return [{"forecast": rows, "model": model},
                [{names.get(k, k): v for k, v in r.items()} for r in rows],
                {"forecast": lists}, lists, {"forecast": split, "model": model}, split,
                values(1), {"forecast": values(2), "model": model},
                {"meta": {"model": model}, "out": {"a/b": [rows]}}][i]

    for n, c in enumerate(sorted((FIX / "cases").glob("*.json"))[::25]):
        e = json.loads(c.read_text())["expected"]
        near = [{k: v * 1.00001 if isinstance(v, float) else v for k, v in r.items()}
                for r in e["predictions"]]
        for i in range(9):
            a, b = (json.dumps(shaped(i, e["model"], rows)).encode() for rows in (e["predictions"], near))
            write(out / "comparator_shaped", f"{c.stem}_{i}", bytes([i, 1, 1]) + a + b"\xff" + b)
            if n == 0:
                write(out / "comparator_shaped", f"{c.stem}_{i}_err",
                      bytes([i, 0, 1]) + b'{"error":{"code":"timeout","message":"x"}}\xff' + a)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    profile_seeds(Path(sys.argv[1]))
