#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the tools the tests use, builds, runs the NUnit suite,
# then the interop tests (tests/interop: firebase-tools' Auth emulator, the Firebase JS SDK and
# headless Chromium against the emulator host), and ends with one "N passed, N failed" line over both.
# Usage: bash tests/run.sh [extra dotnet test arguments]; RIS_SKIP_INTEROP=1 skips the interop tests,
# RIS_SKIP_BENCHMARKS=1 the benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

interop=1
[[ ${RIS_SKIP_INTEROP:-} == 1 ]] && interop=0

# Debian packages the tests drive: shellcheck lints deploy.sh; the interop tests drive chromium; the
# Firestore tests start Google's Firestore emulator.
missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
if ((interop)); then
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi
# The Firestore adapters are tested against Google's emulator (gcloud emulators firestore start, Java).
if ! command -v gcloud >/dev/null || [[ ! -d /usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator ]]; then
  missing+=(google-cloud-cli google-cloud-cli-firestore-emulator default-jre-headless)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]}"
    apt_started=$SECONDS
    # A failed install is reported by the tests that need the tool; it does not stop the others.
    if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
      log "installed in $((SECONDS - apt_started)) s"
    else
      log "installing ${missing[*]} failed; the tests that need them will fail"
    fi
  else
    log "missing ${missing[*]}: install with 'sudo apt-get install ${missing[*]}'; the tests that need them will fail"
  fi
fi

log "restoring and building"
dotnet build ReverseImageSearch.sln -c Release -nologo -clp:ErrorsOnly

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
log "running tests"
status=0
dotnet test ReverseImageSearch.sln -c Release --no-build -nologo \
  --logger "trx;LogFilePrefix=run" --results-directory "$results" "$@" || status=$?

# Interop tests (tests/interop/README.md): node packages pinned by package-lock.json, installed
# without their install scripts; run.mjs starts and stops every process it needs.
interop_summary=tests/interop/artifacts/summary.json
rm -f "$interop_summary"
if ((interop)); then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "node and npm are missing (Node 20 or later): the interop tests cannot run"
    mkdir -p "$(dirname "$interop_summary")"
    echo '{"passed": 0, "failed": 1, "skipped": 0, "error": "node is missing"}' >"$interop_summary"
    status=1
  else
    lock_sum=$(sha256sum tests/interop/package-lock.json | cut -d' ' -f1)
    if [[ $(cat tests/interop/node_modules/.lock-sha256 2>/dev/null) != "$lock_sum" ]]; then
      log "installing the interop tests' node packages (npm ci --ignore-scripts)"
      npm_started=$SECONDS
      (cd tests/interop && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
        && echo "$lock_sum" >tests/interop/node_modules/.lock-sha256 || status=1
      log "installed in $((SECONDS - npm_started)) s"
    fi
    log "running interop tests"
    interop_started=$SECONDS
    node tests/interop/run.mjs || status=1
    log "interop tests took $((SECONDS - interop_started)) s"
  fi
fi

# The benchmarks' quick mode (BENCHMARKS.md): every benchmark and its anchor on small sizes, as a smoke
# test without timing assertions. RIS_SKIP_BENCHMARKS=1 skips it.
if [[ ${RIS_SKIP_BENCHMARKS:-} != 1 ]]; then
  log "benchmark smoke run (bash benchmarks/run.sh --quick)"
  bench_started=$SECONDS
  bash benchmarks/run.sh --quick >/dev/null || { log "the benchmark smoke run failed"; status=1; }
  log "benchmark smoke run took $((SECONDS - bench_started)) s"
fi

# One closing line summed over every test assembly's TRX file and the interop tests' summary.
python3 - "$results" "$interop_summary" <<'PY'
import glob, json, os, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
if os.path.exists(sys.argv[2]):
    interop = json.load(open(sys.argv[2]))
    passed += interop.get("passed", 0)
    failed += interop.get("failed", 0)
    skipped += interop.get("skipped", 0)
for path in glob.glob(sys.argv[1] + "/*.trx"):
    counters = ET.parse(path).getroot().find("t:ResultSummary/t:Counters", ns)
    passed += int(counters.get("passed", 0))
    failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0))
    skipped += int(counters.get("notExecuted", 0))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
