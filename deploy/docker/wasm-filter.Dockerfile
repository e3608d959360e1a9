# syntax=docker/dockerfile:1
# The Proxy-Wasm filter as an OCI image Istio's WasmPlugin can pull
# (url: oci://REGISTRY/nd-filter:TAG): one layer holding plugin.wasm at the
# root, FROM scratch. Build context: the repository root:
#   docker build -f deploy/docker/wasm-filter.Dockerfile -t ghcr.io/neuro-divergent/nd-filter:0.1.0 .
# Push it as a single manifest (docker buildx build --provenance=false --push):
# Istio compares istio.filter.sha256 with the digest of the manifest it pulls,
# which an attestation index would change (docs/release.md).
# The module is what wasm-filter/build.sh builds (size-optimised, <= 300 KiB).

# Base images are pinned by digest, the tag beside it saying what it is (the
# digest decides which image): updating a base is a reviewed change of that line.
# rust:1.95.0-bookworm's index digest (docker-library/repo-info, repos/rust/remote/1.95.0-bookworm.md).
FROM rust:1.95.0-bookworm@sha256:adad87df11151c18ba1689c3e1ea8d4810540a29c0adf4a3d69aec35d8ed8968 AS build
RUN rustup target add wasm32-wasip1
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY inference inference
COPY wasm-filter wasm-filter
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=nd-wasm-target \
    wasm-filter/build.sh \
 && install -D -m 0644 target/wasm32-wasip1/release/wasm_filter.wasm /out/plugin.wasm

FROM scratch
COPY --from=build /out/plugin.wasm /plugin.wasm
