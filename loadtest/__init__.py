"""The local mesh (Python service, Rust service, Envoy with the Wasm filter,
Prometheus) and what runs on it: `make run` (mesh.py), `make loadtest`
(loadtest.py), `make migrate` (migrate.py, gates.py), fault injection
(faults.py). Run from the repository root: `python -m loadtest.<module>`."""
