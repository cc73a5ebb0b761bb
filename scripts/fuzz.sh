#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo fuzz on libFuzzer) and runs each for SECONDS (default 60)
# from the committed seeds in fuzz/seeds/<target>/, plus, when COMPRESSOR_CORPUS is set, up to
# FUZZ_CORPUS_FILES (default 48) of its smallest files of the target's kind, copied to a temporary
# folder (never into the repository). Prints each target's executions and coverage; exits non-zero
# on any crash, timeout, out-of-memory or broken invariant (the input is left in fuzz/artifacts/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The machine has a stable toolchain only: cargo fuzz needs nightly's -Z flags, which
# RUSTC_BOOTSTRAP=1 allows on stable; no sanitizer (-s none), release without debug assertions
# (they would slow the codecs and fire inside dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all=(compress_png compress_jpeg compress_gif compress_webp compress_avif avif_container metadata v1_query legacy_multipart manifest_line)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
corpus_files=${FUZZ_CORPUS_FILES:-48}

export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: scripts/install-deps.sh installs it" >&2; exit 1; }
build_start=$SECONDS
"${fuzz[@]}" build --fuzz-dir fuzz -s none >&2 || { echo "fuzz: the build failed" >&2; exit 1; }
echo "fuzz: build took $((SECONDS - build_start)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

max_len() {
  case $1 in
    manifest_line | v1_query) echo 32768 ;;
    metadata) echo 4096 ;;
    *) echo 65536 ;;
  esac
}

# Up to $corpus_files of the corpus's smallest files of the target's kind, each wrapped as the
# target reads its input (option bytes first, a request around it, ...), into folder $2.
corpus_seeds() {
  [[ -n ${COMPRESSOR_CORPUS:-} && -d $COMPRESSOR_CORPUS ]] || return 0
  python3 - "$1" "$2" "$COMPRESSOR_CORPUS" "$corpus_files" "$(max_len "$1")" <<'EOF'
import os, sys
target, out, corpus, count, max_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def kind(head):
    if head.startswith(b"\x89PNG\r\n\x1a\n"): return "png"
    if head.startswith(b"\xff\xd8\xff"): return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"): return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP": return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"): return "avif"
    return None
wanted = {"compress_png": {"png"}, "compress_jpeg": {"jpeg"}, "compress_gif": {"gif"}, "compress_webp": {"webp"},
          "compress_avif": {"avif"}, "avif_container": {"avif"}, "v1_query": {"png", "jpeg", "gif", "webp", "avif"},
          "legacy_multipart": {"png", "jpeg", "gif", "webp"}}.get(target)
if not wanted: sys.exit(0)
files = []
for root, _, names in os.walk(corpus):
    for name in names:
        path = os.path.join(root, name)
        size = os.path.getsize(path)
        if 0 < size <= max_len - 300:
            with open(path, "rb") as f:
                if kind(f.read(12)) in wanted: files.append((size, path))
os.makedirs(out, exist_ok=True)
for i, (_, path) in enumerate(sorted(files)[:count]):
    data = open(path, "rb").read()
    if target.startswith("compress_"):
        data = bytes([0x40 | (i & 1), 0xFF, 0]) + data
    elif target == "v1_query":
        data = b"effort=1\n\n\n" + data
    elif target == "legacy_multipart":
        data = (b"strategy=pngquant\nmultipart/form-data; boundary=B\n--B\r\nContent-Disposition: form-data; "
                b"name=\"image_files\"; filename=\"x\"\r\n\r\n" + data + b"\r\n--B--\r\n")
    open(os.path.join(out, "c%04d" % i), "wb").write(data)
EOF
}

status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/new" "fuzz/artifacts/$t"
  corpus_seeds "$t" "$work/$t/corpus"
  dirs=("$work/$t/new" "fuzz/seeds/$t")
  [[ -d $work/$t/corpus ]] && dirs+=("$work/$t/corpus")
  log="$work/$t.log"
  echo "fuzz: $t for ${seconds}s from $(find "${dirs[@]}" -type f | wc -l) seeds" >&2
  rc=0
  "${fuzz[@]}" run --fuzz-dir fuzz -s none "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=3072 -malloc_limit_mb=3072 -timeout=30 \
    -print_final_stats=1 -close_fd_mask=1 >"$log" 2>&1 || rc=$?
  runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || true)
  cov=$(grep -E '#[0-9]+\s+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' || true)
  if ((rc != 0)); then
    status=1
    summary+=("$t: FAILED (exit $rc) after ${runs:-?} runs; ${cov:-no coverage line}")
    echo "fuzz: $t failed; the end of its log:" >&2
    tail -40 "$log" >&2
    ls -t "fuzz/artifacts/$t" | head -3 | sed "s|^|  fuzz/artifacts/$t/|" >&2
  else
    summary+=("$t: ${runs:-?} runs; ${cov:-no coverage line}")
  fi
done
echo "fuzz results (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$status"
