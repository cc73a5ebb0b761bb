# syntax=docker/dockerfile:1
#
# The compressor image, two ways to the same filesystem (scripts/image.sh assembles it both times):
#   docker build -t compressor .                  builds the binary in the `build` stage (needs the
#                                                 rust:1-bookworm image from a registry)
#   scripts/image.sh build                        uses target/release/compressor from the host
#                                                 (ROOTFS=local; no base image is pulled at all)
#   scripts/image.sh build-video                  the same plus ffmpeg/ffprobe (SERVICES=images,video)
#   docker build --build-arg VIDEO=1 --build-arg SERVICES=images,video -t compressor-video .
# The runtime image is FROM scratch: the stripped binary, the shared libraries it links, CA
# certificates, passwd/group for user 10001. No shell.

ARG ROOTFS=build

# ---- build (registry users) -------------------------------------------------------------------
FROM docker.io/library/rust:1-bookworm AS build
# nasm: mozjpeg's and rav1e's SIMD kernels; libdav1d-dev + pkg-config: the AV1 decoder that
# compressor-avif links (the runtime image gets libdav1d.so.6 copied in by scripts/image.sh);
# libheif-dev: HEIC input (bookworm's libheif 1.15 links libde265, x265 and aom directly, so
# image.sh's ldd copy carries them; it has no dlopen'ed plugins).
# VIDEO=1: Debian's ffmpeg too, copied into the runtime image with its libraries.
ARG VIDEO=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends nasm pkg-config libdav1d-dev libheif-dev binutils \
 && if [ "$VIDEO" = 1 ]; then apt-get install -y --no-install-recommends ffmpeg; fi \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io download and the target dir between builds (BuildKit, buildah).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p compressor --bin compressor \
 && VIDEO=$VIDEO scripts/image.sh rootfs / target/release/compressor

# ---- the host's filesystem, from scripts/image.sh build ---------------------------------------
FROM scratch AS local
COPY rootfs/ /rootfs/

FROM ${ROOTFS} AS rootfs

# ---- runtime ----------------------------------------------------------------------------------
FROM scratch
COPY --from=rootfs /rootfs/ /

# A fixed numeric id, so Kubernetes `runAsNonRoot` can check it without resolving names.
USER 10001:10001

# The binary's default listen address; inside a container it must be all interfaces.
ENV COMPRESSOR_LISTEN=0.0.0.0:8080
# The services the image can run: images only unless ffmpeg is inside (build-video).
ARG SERVICES=images
ENV COMPRESSOR_SERVICES=${SERVICES}
EXPOSE 8080

# The service drains in-flight requests on SIGTERM (docker/podman stop, Kubernetes, GCE shutdown).
STOPSIGNAL SIGTERM

# The image has no shell and no curl: the binary asks itself (GET /readyz on COMPRESSOR_LISTEN).
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/compressor", "healthcheck", "--timeout", "5s"]

ENTRYPOINT ["/usr/local/bin/compressor"]
CMD ["serve"]
