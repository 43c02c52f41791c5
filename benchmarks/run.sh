#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md, each with its anchor in the same run, by one command:
#
#   bash benchmarks/run.sh --quick   # smoke run for CI: small sizes, no timing assertions, exits 0 when all ran
#   bash benchmarks/run.sh --full    # the figures: check `uptime` first, the machine must be otherwise idle
#
# Options: --out DIR (default benchmarks/results/MODE), --port N (default 5097, loopback only).
# Installs what it needs when run as root: python3-faiss python3-numpy python3-pil (Debian), the TF.js anchor
# (npm ci, pinned by benchmarks/anchors/tfjs/package-lock.json). Caches generated images and the copy-detection
# set under ${RIS_BENCH_CACHE:-/tmp/ris-bench-cache}. Sends traffic to 127.0.0.1 only.
set -euo pipefail

mode=quick
out=""
port=5097
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --out) out=$2; shift ;;
    --port) port=$2; shift ;;
    *) echo "usage: bash benchmarks/run.sh [--quick|--full] [--out DIR] [--port N]" >&2; exit 2 ;;
  esac
  shift
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${out:-$root/benchmarks/results/$mode}
cache=${RIS_BENCH_CACHE:-/tmp/ris-bench-cache}
mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
started=$(date +%s)
log() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - started ))" "$*" >&2; }

if [ "$mode" = quick ]; then
  export RIS_BENCH_QUICK=1
  index_sizes=(10000); seconds=1; backfill_images=24; total_vectors=10000; load_requests=64; load_seconds=5
  originals=8; distractors=6; quality_packages="ukui-wallpapers lomiri-wallpapers-20.04 lomiri-wallpapers-16.04"; tfjs_small=2; tfjs_large=0
else
  unset RIS_BENCH_QUICK
  index_sizes=(10000 100000); seconds=5; backfill_images=1000; total_vectors=100000; load_requests=400; load_seconds=30
  originals=80; distractors=10000; quality_packages=""; tfjs_small=12; tfjs_large=3
fi

# --- prerequisites ------------------------------------------------------------------------------------------
python=/usr/bin/python3
if ! $python -c "import faiss, numpy, PIL" 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    log "installing python3-faiss python3-numpy python3-pil"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-faiss python3-numpy python3-pil >/dev/null
  else
    echo "needs the Debian packages python3-faiss python3-numpy python3-pil (run as root to install them)" >&2
    exit 1
  fi
fi
if [ ! -d "$root/benchmarks/anchors/tfjs/node_modules/@tensorflow/tfjs-backend-wasm" ]; then
  log "installing the TF.js anchor (npm ci)"
  (cd "$root/benchmarks/anchors/tfjs" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
log "building (Release)"
dotnet build "$root/benchmarks/ReverseImageSearch.Benchmarks" -c Release -nologo -v q >/dev/null
bench="$root/benchmarks/ReverseImageSearch.Benchmarks/bin/Release/net10.0/linux-x64/ris-bench"
dotnet publish "$root/emulator" -c Release -r linux-x64 --self-contained false -nologo -v q -o "$cache/emulator" >/dev/null
emulator="$cache/emulator/ris-emulator"

# The same weights in TF.js form live in shared/ beside the repository (the ONNX model is their conversion).
tfjs_model=$(cd "$root/.." && pwd)/shared/models/mobilenet_v2/tfjs/model.json

# --- machine --------------------------------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
vector=$(case "$flags" in *avx512f*) echo avx512 ;; *avx2*) echo avx2 ;; *) echo sse ;; esac)
cat > "$out/machine.json" <<EOF
{"mode": "$mode", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "nproc": $(nproc), "cpu": "$cpu", "vector": "$vector",
 "mhz": "$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')", "loadAtStart": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "commit": "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)", "dotnet": "$(dotnet --version)", "node": "$(node --version)"}
EOF
log "machine: $(nproc) cores, $cpu, load $(cut -d' ' -f1 /proc/loadavg)"
for threads in 1 2; do
  "$bench" peak-flops --threads $threads --seconds "$([ $mode = quick ] && echo 0.3 || echo 2)" --json "$out/peak-flops-$threads.json" >/dev/null
done

# --- 1. embedding throughput: BenchmarkDotNet, and the original's pipeline in TF.js -----------------------------
images="$cache/images"
export RIS_BENCH_IMAGES=$images
mkdir -p "$images"
"$bench" gen-images --out "$images" --count 32 --width 1024 --height 768 >/dev/null
log "embedding (BenchmarkDotNet)"
# The int8 model's pipeline too (models/mobilenet_v2/README.md); RIS_BENCH_MODELS=float32 skips it.
[ $mode = quick ] || export RIS_BENCH_MODELS=${RIS_BENCH_MODELS:-float32,int8}
(cd "$out" && "$bench" bdn --filter '*EmbeddingBenchmarks*' --artifacts "$out/bdn" >"$out/bdn-embedding.log" 2>&1)
log "embedding anchor (TF.js, one request at a time)"
node "$root/benchmarks/anchors/tfjs/embed.mjs" --model "$tfjs_model" \
  --images "$images" --max-images "$tfjs_small" --json "$out/tfjs-1024.json" >/dev/null 2>"$out/tfjs.log"
if [ "$tfjs_large" -gt 0 ]; then
  large="$cache/images-large"
  "$bench" gen-images --out "$large" --count "$tfjs_large" --width 4000 --height 3000 >/dev/null
  node "$root/benchmarks/anchors/tfjs/embed.mjs" --model "$tfjs_model" \
    --images "$large" --max-images "$tfjs_large" --json "$out/tfjs-4000.json" >/dev/null 2>>"$out/tfjs.log"
fi

# --- 2. index search against FAISS IndexFlatIP ----------------------------------------------------------------------
# float32: every row scored (writes the true top 10); exact: the index's default, int8-filtered, the same answers
# (recall@10 must be 1); quantized: int8 + float16 rescoring, approximate (treeAhConfig).
log "index search (float32 scan, exact int8-filtered, int8+rescoring, FAISS flat)"
for n in "${index_sizes[@]}"; do
  for threads in 1 2; do
    cpus=$([ $threads = 1 ] && echo 0 || echo 0-1)
    truth="$cache/truth-$n.i32"
    taskset -c "$cpus" "$bench" index-search --count "$n" --mode float32 --seconds "$seconds" --truth "$truth" --json "$out/index-float32-$n-$threads.json" >/dev/null
    taskset -c "$cpus" "$bench" index-search --count "$n" --mode exact --seconds "$seconds" --truth "$truth" --json "$out/index-exact-$n-$threads.json" >/dev/null
    taskset -c "$cpus" "$bench" index-search --count "$n" --mode quantized --seconds "$seconds" --truth "$truth" --json "$out/index-int8-$n-$threads.json" >/dev/null
    "$bench" vectors --count "$n" --queries-out "$cache/queries-$n.f32" \
      | taskset -c "$cpus" $python "$root/benchmarks/anchors/faiss/faiss_flat.py" --count "$n" --queries "$cache/queries-$n.f32" \
          --threads $threads --seconds "$seconds" --truth "$truth" --json "$out/index-faiss-$n-$threads.json" >/dev/null
  done
done
if [ "$mode" = full ]; then
  (cd "$out" && "$bench" bdn --filter '*IndexSearchBenchmarks*' --artifacts "$out/bdn" >"$out/bdn-index.log" 2>&1)
fi

# --- 5. backfill through the whole local pipeline, install to first answer ---------------------------------------
log "backfill of $backfill_images generated 1024-px images (serve on a fresh data folder until the first answer)"
backfill="$cache/backfill-$backfill_images"
"$bench" gen-images --out "$backfill" --count "$backfill_images" --width 1024 --height 768 --seed 7 --prefix photo >/dev/null
query_image="$images/img1024x768-00031.jpg"
data="$cache/data-$mode"
rm -rf "$data"
url="http://127.0.0.1:$port/demo-reverse-image-search/us-central1/ext-storage-reverse-image-search-queryIndex"
"$bench" load --spawn "$emulator" --spawn-args "serve --images $backfill --data $data --port $port" --url "$url" \
  --image "$query_image" --clients 1 --requests 3 --seconds 5 --start-timeout 900 --json "$out/backfill.json" >/dev/null 2>"$out/backfill.log"

# --- 4. memory with the model loaded and a small index: all nine functions in one emulator process, so an upper
# bound for any single function; ASP.NET's default server GC against the workstation GC.
log "peak memory with the model loaded (24-image index), server and workstation GC"
"$bench" gen-images --out "$cache/backfill-24" --count 24 --width 1024 --height 768 --seed 7 --prefix photo >/dev/null
for gc in server workstation; do
  rm -rf "$cache/data-memory"
  DOTNET_gcServer=$([ $gc = server ] && echo 1 || echo 0) "$bench" load --spawn "$emulator" \
    --spawn-args "serve --images $cache/backfill-24 --data $cache/data-memory --port $port" --url "$url" \
    --image "$query_image" --clients 1,8 --requests 40 --seconds 5 --start-timeout 120 --json "$out/memory-$gc.json" >/dev/null 2>>"$out/memory.log"
done
rm -rf "$cache/data-memory"

# --- 3 + 4. callable latency on a grown index, cold start, peak memory ------------------------------------------------
# The loopback load test (issue 11, item 13): 1, 8 and 32 clients, errors, p50/p99 and the server's RSS at the start
# and end of each level; any error fails the run (CI runs the quick mode).
log "growing the index to $total_vectors vectors; callable load at 1, 8 and 32 clients, cold start, memory"
"$bench" seed-index --data "$data" --total "$total_vectors" --json "$out/seed.json" >/dev/null
"$bench" load --spawn "$emulator" --spawn-args "serve --images $backfill --data $data --port $port" --url "$url" \
  --image "$query_image" --clients 1,8,32 --requests "$load_requests" --seconds "$load_seconds" --fail-on-errors \
  --json "$out/latency.json" >/dev/null 2>"$out/latency.log"
# The same with ALGORITHM_CONFIG=treeAhConfig: the local index then answers from its int8 copy (rescored from float16).
log "callable latency with the quantised local index (ALGORITHM_CONFIG=treeAhConfig)"
data_ah="$cache/data-$mode-treeah"
rm -rf "$data_ah"
ALGORITHM_CONFIG=treeAhConfig "$bench" load --spawn "$emulator" --spawn-args "serve --images $backfill --data $data_ah --port $port" --url "$url" \
  --image "$query_image" --clients 1 --requests 3 --seconds 5 --start-timeout 900 --json "$out/backfill-treeah.json" >/dev/null 2>>"$out/latency.log"
"$bench" seed-index --data "$data_ah" --total "$total_vectors" >/dev/null
ALGORITHM_CONFIG=treeAhConfig "$bench" load --spawn "$emulator" --spawn-args "serve --images $backfill --data $data_ah --port $port" --url "$url" \
  --image "$query_image" --clients 1,8 --requests "$load_requests" --seconds "$load_seconds" --json "$out/latency-treeah.json" >/dev/null 2>>"$out/latency.log"
rm -rf "$data_ah"

if [ "$mode" = full ]; then
  log "peak memory per input class (1024 px and 12 MP JPEGs, 49 MP PNG, truncated 20 MB JPEG, a mix), unlimited and with a 1 GiB function's GC heap"
  bash "$root/benchmarks/memory_classes.sh" "$bench" "$emulator" "$cache" "$out" "$port"
  mkdir -p "$out/capped"
  RIS_BENCH_GC_HEAP_LIMIT=0x30000000 bash "$root/benchmarks/memory_classes.sh" "$bench" "$emulator" "$cache" "$out/capped" "$port"
  dotnet publish "$root/emulator" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -nologo -v q -o "$cache/emulator-r2r" >/dev/null
  for variant in emulator emulator-r2r; do
    for run in 1 2 3; do
      "$bench" load --spawn "$cache/$variant/ris-emulator" --spawn-args "serve --images $backfill --data $data --port $port" --url "$url" \
        --image "$query_image" --clients 1 --requests 5 --seconds 5 --json "$out/coldstart-$variant-$run.json" >/dev/null 2>>"$out/coldstart.log"
    done
  done
fi

# --- 6. retrieval quality: copy detection on Debian's wallpapers ------------------------------------------------------
log "retrieval quality (copy detection)"
# Versioned: a change to the dataset builder must not reuse a set built by the previous one. The second set keeps
# the flat pictures (paper textures, plain backgrounds) the first builder let in, for comparison.
for variant in "" "-with-flat"; do
  set_dir="$cache/copydetect-v2$variant-$mode"
  flat_flag=()
  if [ -n "$variant" ]; then flat_flag=(--keep-flat); fi
  if [ ! -f "$set_dir/SOURCES.tsv" ]; then
    RIS_BENCH_PACKAGES="$quality_packages" bash "$root/benchmarks/quality/fetch_debs.sh" "$cache/debs-$mode" 2>"$out/quality-fetch.log"
    rm -rf "$set_dir"
    $python "$root/benchmarks/quality/make_dataset.py" --source "$cache/debs-$mode/tree" --out "$set_dir" \
      --originals "$originals" --distractors "$distractors" "${flat_flag[@]}" >"$out/quality-dataset$variant.log" 2>&1
  fi
  "$bench" quality --dataset "$set_dir" --json "$out/quality$variant.json" >/dev/null
done
rm -rf "$cache/debs-$mode"

# --- 7. INDEX_BACKEND=firestore: findNearest latency on Google's Firestore emulator (an emulator figure) ----------------
if command -v gcloud >/dev/null && [ -d /usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator ]; then
  log "firestore vector queries (Firestore emulator)"
  fs_port=$($python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  setsid gcloud emulators firestore start --host-port="127.0.0.1:$fs_port" >"$out/firestore-emulator.log" 2>&1 &
  fs_pid=$!
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$fs_port/" >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$bench" firestore-query --emulator "127.0.0.1:$fs_port" --count "$([ $mode = quick ] && echo 1000 || echo 10000)" \
    --queries "$([ $mode = quick ] && echo 5 || echo 30)" --json "$out/firestore-query.json" >/dev/null || status_fs=$?
  # setsid made gcloud a process-group leader: stop it and the Java server it started.
  kill -TERM -- "-$fs_pid" 2>/dev/null || true
  wait "$fs_pid" 2>/dev/null || true
  [ "${status_fs:-0}" = 0 ] || { log "firestore-query failed"; exit 1; }
else
  log "firestore vector queries skipped: the Firestore emulator (google-cloud-cli-firestore-emulator) is not installed"
fi

# --- summary ----------------------------------------------------------------------------------------------------------
$python "$root/benchmarks/summarise.py" "$out" > "$out/summary.md"
log "done: $out/summary.md"
cat "$out/summary.md"
