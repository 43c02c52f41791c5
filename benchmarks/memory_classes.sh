#!/usr/bin/env bash
# Peak resident memory of the served callable per input class (issue 11, item 8), one fresh emulator process per
# class on a 24-image index, so each figure is that class's own peak (VmHWM) over start-up, index and load:
#
#   bash benchmarks/memory_classes.sh BENCH EMULATOR CACHE OUT PORT
#
# Classes: a 1024x768 JPEG, a 12-megapixel JPEG, a 7000x7000 PNG (49 megapixels, the largest kind of legal
# image: PNG decodes at full size), a truncated ~20 MB JPEG (refused), and the three legal ones mixed.
# Writes OUT/memory-class-NAME.json. With RIS_BENCH_GC_HEAP_LIMIT=0x30000000 the server's GC heap is capped as in a
# 1 GiB function (.NET takes 75% of a container's memory limit), since this machine's memory is not capped.
# Sends traffic to 127.0.0.1 only.
set -euo pipefail
bench=$1 emulator=$2 cache=$3 out=$4 port=$5
url="http://127.0.0.1:$port/demo-reverse-image-search/us-central1/ext-storage-reverse-image-search-queryIndex"
inputs="$cache/memory-inputs"
mkdir -p "$inputs"
"$bench" gen-images --out "$cache/backfill-24" --count 24 --width 1024 --height 768 --seed 7 --prefix photo >/dev/null
"$bench" gen-images --out "$inputs" --count 1 --width 1024 --height 768 --seed 3 --prefix small >/dev/null
"$bench" gen-images --out "$inputs" --count 1 --width 4000 --height 3000 --seed 3 --prefix photo12mp >/dev/null
"$bench" gen-images --out "$inputs" --count 1 --width 7000 --height 7000 --seed 3 --grain 0 --format png --prefix drawing49mp >/dev/null
"$bench" gen-images --out "$inputs" --count 1 --width 8000 --height 6000 --seed 3 --grain 40 --quality 100 --prefix large >/dev/null
head -c 20000000 "$inputs/large-00000.jpg" > "$inputs/truncated-20mb.jpg"
small="$inputs/small-00000.jpg" photo="$inputs/photo12mp-00000.jpg" png="$inputs/drawing49mp-00000.png"

data="$cache/data-memory-classes"
rm -rf "$data"
spawn=("$emulator" "")
if [ -n "${RIS_BENCH_GC_HEAP_LIMIT:-}" ]; then spawn=(/usr/bin/env "DOTNET_GCHeapHardLimit=$RIS_BENCH_GC_HEAP_LIMIT $emulator "); fi
run_class() {  # NAME CLIENTS REQUESTS IMAGES [--expect rejected]
  local name=$1 clients=$2 requests=$3 images=$4; shift 4
  "$bench" load --spawn "${spawn[0]}" --spawn-args "${spawn[1]}serve --images $cache/backfill-24 --data $data --port $port" --url "$url" \
    --image "$images" --clients "$clients" --requests "$requests" --seconds 60 --warmup 0 --start-timeout 300 "$@" \
    --json "$out/memory-class-$name.json" >/dev/null 2>>"$out/memory-classes.log"
}
# The first run builds the index (with a small image, so the build is not counted against a large class).
run_class jpeg-1024 1,8 40 "$small"
run_class jpeg-12mp 1,8 40 "$photo"
run_class png-49mp 1,4,16 32 "$png"
run_class truncated-jpeg-20mb 1,8 24 "$inputs/truncated-20mb.jpg" --expect rejected
run_class mixed 16 48 "$small,$photo,$png"
rm -rf "$data"
