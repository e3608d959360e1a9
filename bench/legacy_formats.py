"""The same weights in both bundle formats, for the `load` group of
`cargo bench --bench forward` (make bench).

For a few legacy fixture bundles (written by NeuralForecast 3.2.2 in the
pickle format), NeuralForecast 3.3 itself loads the bundle and saves it again
(safetensors + configuration.json). Both copies land in OUT/<bundle>/{v1,v2};
the bench times `Bundle::load` on each, and this script prints the peak RSS of
`neuro-divergent inspect` on each (median of 5).

    python bench/legacy_formats.py [--out bench/results/formats] [--bin target/release/neuro-divergent]
"""
import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ["v32_mlp", "v32_nhits", "v32_tft", "v32_informer", "v32_multi"]


def convert(name: str, out: Path) -> None:
    from neuralforecast import NeuralForecast

    src = ROOT / "tests/fixtures/legacy/bundles" / name
    shutil.rmtree(out / name, ignore_errors=True)
    shutil.copytree(src, out / name / "v1")
    nf = NeuralForecast.load(str(src))
    nf.save(str(out / name / "v2"), overwrite=True, save_dataset=False)


def peak_rss_kb(cmd: list[str]) -> int:
    # GNU time reports the command's own peak (a child's ru_maxrss from here
    # would include the pages of this big Python process before exec).
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, check=True)
    return int(p.stderr.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/formats")
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/neuro-divergent")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| bundle | v1 files | v2 files | peak RSS inspect v1 | v2 |")
    print("|---|---:|---:|---:|---:|")
    for name in BUNDLES:
        convert(name, args.out)
        size = {f: sum(p.stat().st_size for p in (args.out / name / f).iterdir()) for f in ("v1", "v2")}
        rss = {f: statistics.median(peak_rss_kb([str(args.bin), "inspect", str(args.out / name / f)])
                                    for _ in range(5)) for f in ("v1", "v2")}
        print(f"| {name} | {size['v1'] / 1024:.1f} KB | {size['v2'] / 1024:.1f} KB | "
              f"{rss['v1'] / 1024:.1f} MB | {rss['v2'] / 1024:.1f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
