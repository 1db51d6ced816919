# syntax=docker/dockerfile:1
# The operator image: a static-enough Rust binary on distroless (glibc + CA certificates, no shell),
# running as the distroless "nonroot" user (65532). Build: docker build -t blaxel-operator .

FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole (docker-ignored) source tree: Cargo.toml may name targets outside src/.
COPY . .
# Cache mounts keep the registry and build directory between builds; the binary is copied out of
# the cached target directory because cache mounts are not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin blaxel-operator \
    && cp target/release/blaxel-operator /blaxel-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /blaxel-operator /blaxel-operator
USER 65532:65532
# /metrics, /healthz and /readyz (--metrics-bind).
EXPOSE 8080
ENTRYPOINT ["/blaxel-operator"]
CMD ["run"]
