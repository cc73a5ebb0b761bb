# syntax=docker/dockerfile:1

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build

# nasm: mozjpeg-sys and rav1e (via ravif) assemble their SIMD kernels with it; without it the
# build either fails or silently falls back to much slower C/Rust paths.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nasm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Cache mounts keep the crates.io download and the target dir between builds (BuildKit only).
# The binary is copied out in the same step because the cached target/ is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p compressor \
 && install -D -m 0755 target/release/compressor /out/compressor

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: the batch mode talks TLS to object stores (S3, GCS). Nothing else is installed,
# on purpose: no shell tools beyond what slim ships, no curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Fixed numeric ids so Kubernetes `runAsNonRoot` can verify the user without resolving names.
RUN groupadd --system --gid 10001 compressor \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin compressor

COPY --from=build /out/compressor /usr/local/bin/compressor

USER 10001:10001

# The binary's own default listen address may be loopback-only; inside a container it must bind
# all interfaces or nothing can reach it. Compose / k8s / GCE may override it.
ENV COMPRESSOR_LISTEN=0.0.0.0:8080
EXPOSE 8080

# The service drains in-flight requests on SIGTERM (docker stop, k8s, GCE shutdown).
STOPSIGNAL SIGTERM

# No HEALTHCHECK: Docker's HEALTHCHECK runs a command *inside* the container, and this image has
# no HTTP client (adding curl would grow the image and its attack surface for one probe). Health
# is checked from outside instead: Kubernetes httpGet probes and the GCP load-balancer health
# check hit the HTTP endpoint directly. If the CLI ever grows a `compressor healthcheck`
# subcommand, `HEALTHCHECK CMD ["/usr/local/bin/compressor", "healthcheck"]` can be added here.

ENTRYPOINT ["/usr/local/bin/compressor"]
CMD ["serve"]
