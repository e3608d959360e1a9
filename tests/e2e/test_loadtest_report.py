"""The load-test report from hey's own output, without a mesh: a short run
whose percentiles hey could not fill still gives a report ("n/a"), never a
crash, and real percentiles are read in milliseconds."""
from loadtest import hey, loadtest

SHORT_RUN = """
Summary:
  Total:\t2.0311 secs
  Slowest:\t0.1213 secs
  Fastest:\t0.0402 secs
  Average:\t0.0790 secs
  Requests/sec:\t24.6170

Latency distribution:
  10%% in 0.0601 secs
  50%% in 0.0792 secs
  90%% in 0.0981 secs
  99%% in 0.0000 secs

Status code distribution:
  [200]\t50 responses
"""


def test_unfilled_percentile_is_left_out():
    res = hey.parse(SHORT_RUN)
    assert {k: round(v, 6) for k, v in res["latency_ms"].items()} == {"p10": 60.1, "p50": 79.2, "p90": 98.1}
    assert res["ok"] == 50 and res["failed"] == 0
    assert abs(res["rps"] - 24.617) < 1e-9


def test_report_with_missing_p99_says_na():
    py = {"description": "Python service direct", "rps": 24.6, "latency_ms": hey.parse(SHORT_RUN)["latency_ms"],
          "failed": 0, "served": {"python": 50, "rust": 0}, "rss_mb": {}, "hey": "hey"}
    mesh = dict(py, description="Envoy, 100% Rust", rps=1964.2,
                latency_ms={"p50": 0.9, "p90": 1.4, "p99": 4.0}, served={"python": 0, "rust": 3931})
    results = {"python-direct": py, "envoy-rust-100": mesh}
    report = {"started": "t", "duration": "2s", "c": 2, "q": None, "cpus": 2, "results": results,
              "ratios": loadtest.ratios(results), "charts": {"latency": "a.png", "throughput": "b.png"}}
    assert report["ratios"]["mesh100_vs_python_p99"] is None
    md = loadtest.markdown(report)
    assert "p99 xn/a" in md and "p99 4.0 vs n/a ms" in md
    assert "| Python service direct | 24.6 | 79.2 | 98.1 | n/a |" in md
