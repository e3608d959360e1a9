"""Faults written into the Rust service's private bundle copy (mesh.rust_model_path),
which it hot-reloads every RELOAD_INTERVAL_MS. The committed fixtures are never touched.

- wrong_numbers(bundle_dir): a valid bundle whose numbers are wrong (every bias
  tensor shifted by +0.25): it loads, it serves, it answers other predictions.
- corrupt(bundle_dir): the bundle's safetensors overwritten in place with a
  truncated header: a load must fail.
- Backup.restore(): puts the original bytes back.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from pathlib import Path


class Backup:
    def __init__(self, bundle_dir: Path):
        self.bundle_dir = Path(bundle_dir)
        self.saved = Path(tempfile.mkdtemp(prefix="nd-bundle-backup-")) / self.bundle_dir.name
        shutil.copytree(self.bundle_dir, self.saved)

    def restore(self):
        for f in self.saved.iterdir():
            _atomic_write(self.bundle_dir / f.name, f.read_bytes())
        shutil.rmtree(self.saved.parent, ignore_errors=True)


def _atomic_write(path: Path, data: bytes):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def _tensors(path: Path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    return raw, 8 + n, header


def wrong_numbers(bundle_dir: Path, shift: float = 0.25) -> Backup:
    """Shifts every F32 bias of every safetensors model file; atomic rename per file."""
    backup = Backup(bundle_dir)
    changed = 0
    for f in sorted(Path(bundle_dir).glob("*.safetensors")):
        if f.name.startswith("configuration"):
            continue
        raw, base, header = _tensors(f)
        data = bytearray(raw)
        for name, t in header.items():
            if name == "__metadata__" or t.get("dtype") != "F32" or not name.endswith("bias"):
                continue
            lo, hi = t["data_offsets"]
            vals = struct.unpack(f"<{(hi - lo) // 4}f", raw[base + lo:base + hi])
            data[base + lo:base + hi] = struct.pack(f"<{len(vals)}f", *(v + shift for v in vals))
            changed += 1
        _atomic_write(f, bytes(data))
    if not changed:
        raise RuntimeError(f"no bias tensor to perturb in {bundle_dir}")
    return backup


def corrupt(bundle_dir: Path) -> Backup:
    """Overwrites the model file in place (not atomically: the worst case) with a
    header that promises more bytes than the file holds."""
    backup = Backup(bundle_dir)
    for f in sorted(Path(bundle_dir).glob("*.safetensors")):
        if f.name.startswith("configuration"):
            continue
        with open(f, "r+b") as fh:
            fh.write(struct.pack("<Q", 1 << 40) + b"{not json")
            fh.truncate(64)
        break
    return backup
