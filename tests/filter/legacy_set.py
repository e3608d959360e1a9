"""Copy the legacy (pre-3.3, pickle format) fixture bundles that NeuralForecast
3.3 itself answers exactly as their writer did into OUT/bundles, and their
cases into OUT/cases, for tests/filter/real_backends.sh --legacy.

The selection comes from tests/fixtures/legacy/manifest.json (`nf33.result ==
"same"`): those are the bundles the Python reference service (NeuralForecast
3.3 with allow_pickle) can serve with the writer's numbers, so the filter
comparing it with the Rust service must find no mismatch. Bundles 3.3 cannot
load or answers differently (1.x/2.x recurrent models, <= 3.0 local scalers)
are left out: the Rust service refuses those by name (docs/compatibility.md).

    python tests/filter/legacy_set.py OUT
"""
import json
import shutil
import sys
from pathlib import Path

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def select(manifest: dict) -> list[str]:
    return sorted(name for name, b in manifest["bundles"].items() if b.get("nf33", {}).get("result") == "same")


def main(out: Path) -> int:
    manifest = json.loads((LEGACY / "manifest.json").read_text())
    names = select(manifest)
    (out / "bundles").mkdir(parents=True, exist_ok=True)
    (out / "cases").mkdir(parents=True, exist_ok=True)
    cases = 0
    for name in names:
        shutil.copytree(LEGACY / "bundles" / name, out / "bundles" / name, dirs_exist_ok=True)
        for case in manifest["bundles"][name]["cases"]:
            shutil.copy(LEGACY / "cases" / f"{case}.json", out / "cases" / f"{case}.json")
            cases += 1
    families = sorted({manifest["bundles"][n]["family"] for n in names})
    print(f"legacy set: {len(names)} bundles ({', '.join(families)}), {cases} cases -> {out}")
    return 0 if names and cases else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
