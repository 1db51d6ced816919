# syntax=docker/dockerfile:1
# The operator image: a static-enough Rust binary on distroless (glibc + CA certificates, no shell),
# running as the distroless "nonroot" user (65532). Build: docker build -t blaxel-operator .
# The release workflow (.github/workflows/release.yml) builds it for linux/amd64 and linux/arm64 with
# CARGO_FEATURES=otel.
#
# Base images are pinned by digest (multi-platform index digests), so a rebuild uses the bytes that were
# reviewed; to update one: docker buildx imagetools inspect rust:1-bookworm (or the distroless image)
# and copy the index digest, then let CI and check-deploy run.

FROM rust:1-bookworm@sha256:93ce27a88655056a51dbdd8f5f2d7ddc071c7b0070fb288a37b5a285fc83971e AS builder
# Cargo features to build with (the release image: otel, for OTLP trace export).
ARG CARGO_FEATURES=""
ARG TARGETPLATFORM
WORKDIR /src
# The whole (docker-ignored) source tree: Cargo.toml may name targets outside src/.
COPY . .
# Cache mounts keep the registry and build directory between builds (one build directory per platform,
# so a multi-platform build never shares one); the binary is copied out of the cached target directory
# because cache mounts are not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=blaxel-operator-target-${TARGETPLATFORM},target=/src/target \
    cargo build --release --locked --bin blaxel-operator ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} \
    && cp target/release/blaxel-operator /blaxel-operator

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=builder /blaxel-operator /blaxel-operator
USER 65532:65532
# /metrics, /healthz and /readyz (--metrics-bind).
EXPOSE 8080
ENTRYPOINT ["/blaxel-operator"]
CMD ["run"]
