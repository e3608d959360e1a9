# syntax=docker/dockerfile:1
# The neuro-divergent service: a static musl binary on distroless static,
# running as the image's non-root user (65532). Build context: the repository
# root (BuildKit reads rust.Dockerfile.dockerignore next to this file):
#   docker build -f deploy/docker/rust.Dockerfile -t ghcr.io/neuro-divergent/neuro-divergent:0.1.0 .
# The binary is what `cargo build --release --locked -p neuro-divergent
# --target x86_64-unknown-linux-musl` builds (every dependency is pure Rust).
# Models are not baked in: the chart mounts them at /models (values.models).

# Base images are pinned by digest, the tag beside it saying what it is (the
# digest decides which image): updating a base is a reviewed change of that line.
# rust:1.95.0-bookworm's index digest (docker-library/repo-info, repos/rust/remote/1.95.0-bookworm.md).
FROM rust:1.95.0-bookworm@sha256:adad87df11151c18ba1689c3e1ea8d4810540a29c0adf4a3d69aec35d8ed8968 AS build
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

# distroless static-debian12:nonroot, by digest.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/neuro-divergent /usr/local/bin/neuro-divergent
USER 65532:65532
EXPOSE 8080
# /health, /ready and /metrics on the same port; config via ND_CONFIG or flags.
ENTRYPOINT ["/usr/local/bin/neuro-divergent"]
CMD ["serve"]
