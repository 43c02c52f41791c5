#!/usr/bin/env bash
# The fault-injection suite's full mode (tests/ReverseImageSearch.Tests/Faults): RUNS seeded runs over IMAGES
# images, each killing a real `ris-emulator index` with SIGKILL at chosen points while files change and tasks are
# delivered twice, then checking the last start ends deployed with every image indexed once. One line per run.
# Racing file changes are on here and in the short mode of the test run (RIS_FAULT_RACE=0 turns them off).
# Usage: bash tests/faults.sh [RUNS (24)] [IMAGES (1000)] [FIRST_SEED (1)]. The short mode (2 runs, 120 images)
# runs with the other tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export RIS_FAULT_RUNS=${1:-24} RIS_FAULT_IMAGES=${2:-1000} RIS_FAULT_SEED=${3:-1} RIS_FAULT_RACE=${RIS_FAULT_RACE:-1}
dotnet build tests/ReverseImageSearch.Tests -c Release -nologo -clp:ErrorsOnly
dotnet test tests/ReverseImageSearch.Tests -c Release --no-build -nologo \
  --filter "FullyQualifiedName~ReverseImageSearch.Tests.Faults" --logger "console;verbosity=normal"
