#!/usr/bin/env bash
# Rebuilds models/mobilenet_v2/model.int8.onnx from model.onnx (or MODEL= another float model, OUT= elsewhere):
# calibration images, instrumented copy, calibration in .NET (ONNX Runtime), QDQ model, sha256.
# Needs: root for apt-get (python3-onnx python3-numpy; the calibration .debs), the .NET SDK. About 3 minutes on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${MODEL:-$root/models/mobilenet_v2/model.onnx}
out=${OUT:-$root/models/mobilenet_v2/model.int8.onnx}
work=${WORK:-/tmp/ris-int8}
method=${METHOD:-p99.999}
python=/usr/bin/python3   # Debian's python3-onnx lives in the system interpreter, not in a pyenv one
mkdir -p "$work"
"$python" -c 'import onnx, numpy' 2>/dev/null || apt-get install -y python3-onnx python3-numpy >/dev/null
# ris-bench generates the synthetic calibration images; ris-calibrate (models/tools/Calibration) records the ranges.
for project in benchmarks/ReverseImageSearch.Benchmarks models/tools/Calibration; do
  dotnet build "$root/$project" -c Release >"$work/build.log" || { tail -30 "$work/build.log"; exit 1; }
done
bench=$root/benchmarks/ReverseImageSearch.Benchmarks/bin/Release/net10.0/linux-x64/ris-bench
calibrate=$root/models/tools/Calibration/bin/Release/net10.0/linux-x64/ris-calibrate
RIS_BENCH_BIN=$bench bash "$root/models/tools/calibration_images.sh" "$work/calibration"
"$python" "$root/models/tools/quantize_int8.py" instrument "$model" "$work/instrumented.onnx"
"$calibrate" --model "$work/instrumented.onnx" \
  --images "$work/calibration/photos,$work/calibration/stamps,$work/calibration/generated" --views luma,colour --json "$work/ranges.json" >/dev/null
"$python" "$root/models/tools/quantize_int8.py" quantize "$model" "$work/ranges.json" "$out" --method "$method" \
  --report "$work/quantization-report.json"
sha256sum "$out"
