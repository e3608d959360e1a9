# syntax=docker/dockerfile:1
# The neuro-divergent service: a static musl binary on distroless static,
# running as the image's non-root user (65532). Build context: the repository
# root (BuildKit reads rust.Dockerfile.dockerignore next to this file):
#   docker build -f deploy/docker/rust.Dockerfile -t ghcr.io/neuro-divergent/neuro-divergent:0.1.0 .
# The binary is what `cargo build --release --locked -p neuro-divergent
# --target x86_64-unknown-linux-musl` builds (every dependency is pure Rust).
# Models are not baked in: the chart mounts them at /models (values.models).

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: Cargo.lock covers both members.
COPY Cargo.toml Cargo.lock ./
COPY inference inference
COPY wasm-filter wasm-filter
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=nd-musl-target \
    cargo build --release --locked -p neuro-divergent --target x86_64-unknown-linux-musl \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/neuro-divergent /out/neuro-divergent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/neuro-divergent /usr/local/bin/neuro-divergent
USER 65532:65532
EXPOSE 8080
# /health, /ready and /metrics on the same port; config via ND_CONFIG or flags.
ENTRYPOINT ["/usr/local/bin/neuro-divergent"]
CMD ["serve"]
