#!/usr/bin/env bash
# Installs (or uninstalls) reverse image search for Firebase on Cloud Run functions (gen2, dotnet10):
# nine ASP.NET Core functions, their Cloud Tasks queues, two service accounts and an embeddings bucket.
# Run ./deploy.sh --help for usage. Every parameter is checked before any command runs.
set -euo pipefail

readonly SCRIPT_NAME=${0##*/}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly REPO_ROOT

usage() {
  cat <<EOF
Usage:
  $SCRIPT_NAME --env-file FILE [--dry-run] [--no-install-task]
  $SCRIPT_NAME uninstall --env-file FILE [--dry-run] [--delete-data]
  $SCRIPT_NAME check --env-file FILE
  $SCRIPT_NAME --help

Install (the default) enables the APIs, creates the service accounts ext-<EXT_INSTANCE_ID> (the eight
internal functions) and exq-<EXT_INSTANCE_ID> (queryIndex, read-only) and their role bindings, the
embeddings bucket gs://<PROJECT_ID>-ext-<EXT_INSTANCE_ID>, the three Cloud Tasks queues, deploys the
nine functions and finally enqueues the install task (the backfill). Re-running install updates
everything in place; the install task keeps a finished backfill and its index, resumes one under way,
and starts over only when the index the documents record no longer exists.

Uninstall undeploys the Vector Search index from its endpoint, deletes the endpoint and the index
(they bill by node hour; found by the metadata document and by the instance's display names), then
deletes the functions, the queues, the Firestore documents of _ext-<EXT_INSTANCE_ID> (so a reinstall
builds a new index), the role bindings and both service accounts. The images bucket is
never touched; the embeddings bucket is deleted only with --delete-data.

Check only checks FILE against every rule and prints the parameters the functions would get, defaults
filled in, one KEY: 'value' line each; nothing else is run.

FILE holds KEY=VALUE lines (blank lines and # comments allowed); see deploy/sample.env. It is read
as data, never executed. Keys: the extension parameters of extension.yaml plus PROJECT_ID and
EXT_INSTANCE_ID, the advanced limits (PENDING_WRITE_RETRY_SECONDS, BACKFILL_MAX_ATTEMPTS,
MAX_IMAGE_PIXELS, MAX_IMAGE_BYTES, MAX_QUERY_IMAGES, MODEL_PRECISION), and IMG_BUCKET_LOCATION / FIRESTORE_LOCATION
to skip looking those locations up.

Options:
  --env-file FILE     the parameters (required)
  --dry-run           print every command, one per line prefixed with "+ ", instead of running it;
                      nothing in the cloud is read or changed
  --no-install-task   install: do not enqueue the install (backfill) task, e.g. when redeploying
  --delete-data       uninstall: also delete the embeddings bucket and everything in it
  -h, --help          this text

Exit status: 0 done, 1 a command failed, 2 bad usage or a parameter broke its rule.
EOF
}

say() { printf '%s\n' "$*" >&2; }

usage_error() {
  say "$SCRIPT_NAME: $*"
  say "Try '$SCRIPT_NAME --help'."
  exit 2
}

# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
MODE=install
ENV_FILE=""
DRY_RUN=0
DELETE_DATA=0
INSTALL_TASK=1

if [[ ${1-} == install || ${1-} == uninstall || ${1-} == check ]]; then
  MODE=$1
  shift
fi
while (($# > 0)); do
  case $1 in
    --env-file)
      (($# >= 2)) || usage_error "--env-file needs a file"
      ENV_FILE=$2
      shift 2
      continue
      ;;
    --env-file=*) ENV_FILE=${1#--env-file=} ;;
    --dry-run) DRY_RUN=1 ;;
    --delete-data)
      [[ $MODE == uninstall ]] || usage_error "--delete-data applies to uninstall only"
      DELETE_DATA=1
      ;;
    --no-install-task)
      [[ $MODE == install ]] || usage_error "--no-install-task applies to install only"
      INSTALL_TASK=0
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
[[ -n $ENV_FILE ]] || usage_error "--env-file FILE is required"

# ---------------------------------------------------------------------------------------------
# Parameters: read the env file as data
# ---------------------------------------------------------------------------------------------
readonly EXTENSION_PARAMS=(
  IMG_BUCKET IMG_PATH DO_BACKFILL MODEL_URL MODEL_FROM_TF_HUB INPUT_SHAPE DISTANCE_MEASURE
  ALGORITHM_CONFIG N_COUNT BATCH_SIZE SHARD_SIZE MACHINE_TYPE ACCELERATOR_TYPE ACCELERATOR_COUNT
  MIN_REPLICA_COUNT MAX_REPLICA_COUNT LOCATION ENFORCE_APP_CHECK INDEX_BACKEND MATCH_COLOR
  MATCH_CROPS
)
readonly ADVANCED_PARAMS=(
  PENDING_WRITE_RETRY_SECONDS BACKFILL_MAX_ATTEMPTS MAX_IMAGE_PIXELS MAX_IMAGE_BYTES MAX_QUERY_IMAGES
  MODEL_PRECISION
)
readonly DEPLOY_ONLY_KEYS=(IMG_BUCKET_LOCATION FIRESTORE_LOCATION)
# INDEX_BACKEND=firestore with MODEL_URL set: the model's output size, so the vector index can be made at install.
readonly FIRESTORE_ONLY_KEYS=(VECTOR_DIMENSION)
readonly KNOWN_KEYS=" PROJECT_ID EXT_INSTANCE_ID ${EXTENSION_PARAMS[*]} ${ADVANCED_PARAMS[*]} ${DEPLOY_ONLY_KEYS[*]} ${FIRESTORE_ONLY_KEYS[*]} "

declare -A CFG=()

trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  s=${s%"${s##*[![:space:]]}"}
  printf '%s' "$s"
}

read_env_file() {
  local file=$1 raw line key value number=0
  [[ -f $file && -r $file ]] || usage_error "cannot read the env file '$file'"
  while IFS= read -r raw || [[ -n $raw ]]; do
    number=$((number + 1))
    line=$(trim "${raw%$'\r'}")
    [[ -z $line || $line == \#* ]] && continue
    [[ $line == "export "* ]] && line=$(trim "${line#export }")
    if [[ ! $line =~ ^([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=(.*)$ ]]; then
      say "$file:$number: expected KEY=VALUE, found: $line"
      exit 2
    fi
    key=${BASH_REMATCH[1]}
    value=$(trim "${BASH_REMATCH[2]}")
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
      # Spaces inside the quotes are dropped as well: no parameter's value has any, and the functions trim them.
      value=$(trim "${BASH_REMATCH[1]}")
    else
      # An unquoted value ends where a " #" comment starts.
      value=$(trim "${value%%[[:space:]]#*}")
    fi
    if [[ $KNOWN_KEYS != *" $key "* ]]; then
      say "$file:$number: unknown key $key (known keys: $(trim "$KNOWN_KEYS"))"
      exit 2
    fi
    if [[ -n ${CFG[$key]+set} ]]; then
      say "$file:$number: $key is set twice"
      exit 2
    fi
    CFG[$key]=$value
  done <"$file"
}

# ---------------------------------------------------------------------------------------------
# Validation: the rules of extension.yaml and of ExtensionOptionsLoader (a value must pass both)
# ---------------------------------------------------------------------------------------------
bad_param() {
  local name=$1 rule=$2 shown="(unset)"
  [[ -n ${CFG[$name]-} ]] && shown="'${CFG[$name]}'"
  say "Invalid configuration: $name=$shown $rule"
  exit 2
}

# Sets an empty or missing key to its default, or stops when it is required.
default_or_required() {
  local name=$1 fallback=${2-}
  if [[ -z ${CFG[$name]-} ]]; then
    [[ -n $fallback ]] || bad_param "$name" "is required"
    CFG[$name]=$fallback
  fi
}

check_regex() {
  local name=$1 regex=$2 rule=$3 fallback=${4-}
  default_or_required "$name" "$fallback"
  [[ ${CFG[$name]} =~ $regex ]] || bad_param "$name" "$rule"
}

check_one_of() {
  local name=$1 allowed=$2 fallback=${3-}
  default_or_required "$name" "$fallback"
  [[ " $allowed " == *" ${CFG[$name]} "* ]] || bad_param "$name" "must be one of ${allowed// /, }"
}

check_int() {
  local name=$1 fallback=$2 min=$3 max=$4 value
  default_or_required "$name" "$fallback"
  value=${CFG[$name]}
  if [[ ! $value =~ ^[0-9]{1,10}$ ]] || ((10#$value < min || 10#$value > max)); then
    bad_param "$name" "must be a whole number from $min to $max"
  fi
  CFG[$name]=$((10#$value))
}

check_bool() {
  local name=$1 fallback=$2
  default_or_required "$name" "$fallback"
  [[ ${CFG[$name]} == true || ${CFG[$name]} == false ]] || bad_param "$name" "must be true or false"
}

readonly LOCATIONS="us-central1 us-east1 us-east4 us-west1 us-west2 northamerica-northeast1 europe-west1 europe-west2 europe-west3 europe-west6 asia-east1 asia-northeast1 asia-northeast3 asia-south1 asia-southeast1 australia-southeast1"
readonly DISTANCE_MEASURES="SQUARED_L2_DISTANCE L1_DISTANCE COSINE_DISTANCE DOT_PRODUCT_DISTANCE"
readonly ALGORITHM_CONFIGS="treeAhConfig bruteForceConfig"
readonly SHARD_SIZES="SHARD_SIZE_SMALL SHARD_SIZE_MEDIUM SHARD_SIZE_LARGE"
readonly ACCELERATOR_TYPES="ACCELERATOR_TYPE_UNSPECIFIED NVIDIA_TESLA_K80 NVIDIA_TESLA_P100 NVIDIA_TESLA_V100 NVIDIA_TESLA_P4 NVIDIA_TESLA_T4 NVIDIA_TESLA_A100 NVIDIA_A100_80GB NVIDIA_L4 TPU_V2 TPU_V3 TPU_V4_POD"
readonly MACHINE_TYPES="e2-standard-2 e2-standard-4 e2-standard-8 e2-standard-16 e2-standard-32 e2-highmem-2 e2-highmem-4 e2-highmem-8 e2-highmem-16 e2-highcpu-2 e2-highcpu-4 e2-highcpu-8 e2-highcpu-16 e2-highcpu-32 n1-standard-2 n1-standard-4 n1-standard-8 n1-standard-16 n1-standard-32 n1-highmem-2 n1-highmem-4 n1-highmem-8 n1-highmem-16 n1-highmem-32 n1-highcpu-4 n1-highcpu-8 n1-highcpu-16 n1-highcpu-32 n2-standard-2 n2-standard-4 n2-standard-8 n2-standard-16 n2-standard-32 n2-standard-48 n2-standard-64 n2-standard-80 n2-standard-96 n2-standard-128 n2-highmem-2 n2-highmem-4 n2-highmem-8 n2-highmem-16 n2-highmem-32 n2-highmem-48 n2-highmem-64 n2-highmem-80 n2-highmem-96 n2-highmem-128 n2-highcpu-2 n2-highcpu-4 n2-highcpu-8 n2-highcpu-16 n2-highcpu-32 n2d-standard-2 n2d-standard-4 n2d-standard-8 n2d-standard-16 n2d-standard-32 n2d-standard-48 n2d-standard-64 n2d-standard-80 n2d-standard-96 n2d-standard-128 n2d-highmem-2 n2d-highmem-4 n2d-highmem-8 n2d-highmem-16 n2d-highmem-32 n2d-highmem-48 n2d-highmem-64 n2d-highmem-80 n2d-highmem-96 n2d-highmem-128 n2d-highcpu-2 n2d-highcpu-4 n2d-highcpu-8 n2d-highcpu-16 n2d-highcpu-32 a2-highgpu-1g a2-highgpu-2g a2-highgpu-4g a2-highgpu-8g a2-megagpu-16g g2-standard-4 g2-standard-8 g2-standard-12 g2-standard-16"

validate() {
  check_regex PROJECT_ID '^[a-z][a-z0-9-]{4,28}[a-z0-9]$' \
    "must be a Google Cloud project id (6-30 lower-case letters, digits and hyphens)"
  # The loader allows 1-63 characters; the service account id ext-<instance> must be 6-30
  # characters and end with a letter or digit, hence 2-26 here.
  check_regex EXT_INSTANCE_ID '^[a-z][a-z0-9-]{0,24}[a-z0-9]$' \
    "must be 2-26 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen (the service account ext-<id> allows at most 30 characters)"
  check_one_of LOCATION "$LOCATIONS"
  check_regex IMG_BUCKET '^[0-9a-z_.-]+$' \
    "must be a bucket name: lower-case letters, digits, '_', '.', '-'"
  if [[ -n ${CFG[IMG_PATH]-} ]]; then
    check_regex IMG_PATH '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$' \
      "must be a folder path like 'images' or 'a/b' (letters, digits, '_', '-', no leading or trailing '/'), or empty"
  fi
  CFG[IMG_PATH]=${CFG[IMG_PATH]-}
  check_bool DO_BACKFILL true
  if [[ -n ${CFG[MODEL_URL]-} && ! ${CFG[MODEL_URL]} =~ ^https://[^[:space:]]+$ ]]; then
    bad_param MODEL_URL "must be empty (the bundled MobileNetV2 ONNX model) or an https:// URL of an ONNX model"
  fi
  CFG[MODEL_URL]=${CFG[MODEL_URL]-}
  check_bool MODEL_FROM_TF_HUB false
  [[ ${CFG[MODEL_FROM_TF_HUB]} == false ]] || bad_param MODEL_FROM_TF_HUB \
    "is not supported: this port runs ONNX models; convert the model with tf2onnx and set MODEL_URL to the .onnx file"
  check_regex INPUT_SHAPE '^[0-9]+,[0-9]+$' "must be two whole numbers 'H,W', for example 224,224" "224,224"
  local side
  for side in "${CFG[INPUT_SHAPE]%,*}" "${CFG[INPUT_SHAPE]#*,}"; do
    if ((${#side} > 5)) || ((10#$side < 16 || 10#$side > 4096)); then
      bad_param INPUT_SHAPE "must have both sides between 16 and 4096"
    fi
  done
  check_one_of DISTANCE_MEASURE "$DISTANCE_MEASURES" DOT_PRODUCT_DISTANCE
  # Unset keeps Vertex AI, so re-running an older installation's env file never switches its engine.
  check_one_of INDEX_BACKEND "firestore vertex" vertex
  [[ ${CFG[INDEX_BACKEND]} == vertex || ${CFG[DISTANCE_MEASURE]} != L1_DISTANCE ]] || bad_param DISTANCE_MEASURE \
    "is not available with INDEX_BACKEND=firestore: Firestore vector search measures EUCLIDEAN, COSINE and DOT_PRODUCT only"
  if [[ -n ${CFG[VECTOR_DIMENSION]-} ]]; then
    check_int VECTOR_DIMENSION 1280 1 2048
  fi
  check_one_of ALGORITHM_CONFIG "$ALGORITHM_CONFIGS" bruteForceConfig
  check_int N_COUNT 100 1 100000
  check_int BATCH_SIZE 32 1 64
  check_one_of SHARD_SIZE "$SHARD_SIZES" SHARD_SIZE_SMALL
  check_one_of MACHINE_TYPE "$MACHINE_TYPES" e2-standard-2
  check_one_of ACCELERATOR_TYPE "$ACCELERATOR_TYPES" ACCELERATOR_TYPE_UNSPECIFIED
  check_int ACCELERATOR_COUNT 1 1 16
  check_int MIN_REPLICA_COUNT 1 1 1000
  check_int MAX_REPLICA_COUNT 1 1 1000
  ((CFG[MAX_REPLICA_COUNT] >= CFG[MIN_REPLICA_COUNT])) ||
    bad_param MAX_REPLICA_COUNT "must be at least MIN_REPLICA_COUNT (${CFG[MIN_REPLICA_COUNT]})"
  check_int PENDING_WRITE_RETRY_SECONDS 300 1 86400
  check_int BACKFILL_MAX_ATTEMPTS 50 1 1000
  check_int MAX_IMAGE_PIXELS 50000000 1 2147483647
  check_int MAX_IMAGE_BYTES 33554432 1 2147483647
  check_int MAX_QUERY_IMAGES 16 1 256
  check_one_of MODEL_PRECISION "float32 int8" float32
  check_bool ENFORCE_APP_CHECK false
  check_bool MATCH_COLOR true
  check_bool MATCH_CROPS false
  [[ ${CFG[MODEL_PRECISION]} == float32 || -z ${CFG[MODEL_URL]} ]] ||
    bad_param MODEL_PRECISION "chooses between the bundled models, so MODEL_URL must be empty (point MODEL_URL at an int8 model instead)"
  local key
  for key in "${DEPLOY_ONLY_KEYS[@]}"; do
    if [[ -n ${CFG[$key]-} ]]; then
      CFG[$key]=${CFG[$key],,}
      [[ ${CFG[$key]} =~ ^[a-z][a-z0-9-]*[a-z0-9]$ ]] ||
        bad_param "$key" "must be a location such as us-central1, us or nam5"
    fi
  done
}

read_env_file "$ENV_FILE"
validate

# print_parameters: the parameters the functions read, as YAML 'KEY: value' lines (single-quoted scalars keep
# commas, colons and '#').
print_parameters() {
  local key value
  for key in PROJECT_ID EXT_INSTANCE_ID "${EXTENSION_PARAMS[@]}" "${ADVANCED_PARAMS[@]}"; do
    value=${CFG[$key]}
    printf "%s: '%s'\n" "$key" "${value//\'/\'\'}"
  done
}

if [[ $MODE == check ]]; then
  print_parameters
  exit 0
fi

readonly PROJECT_ID=${CFG[PROJECT_ID]}
readonly INSTANCE=${CFG[EXT_INSTANCE_ID]}
readonly LOCATION=${CFG[LOCATION]}
readonly IMG_BUCKET=${CFG[IMG_BUCKET]}
readonly SA_NAME="ext-$INSTANCE"
readonly SA_EMAIL="$SA_NAME@$PROJECT_ID.iam.gserviceaccount.com"
readonly SA_MEMBER="serviceAccount:$SA_EMAIL"
# queryIndex is public and decodes untrusted images in native code: it runs as its own account, which
# can only read (exq-: the account id allows 30 characters and EXT_INSTANCE_ID up to 26).
readonly QUERY_SA_NAME="exq-$INSTANCE"
readonly QUERY_SA_EMAIL="$QUERY_SA_NAME@$PROJECT_ID.iam.gserviceaccount.com"
readonly QUERY_SA_MEMBER="serviceAccount:$QUERY_SA_EMAIL"
readonly EMBEDDINGS_BUCKET="gs://$PROJECT_ID-ext-$INSTANCE"
readonly DEPLOYED_INDEX_ID="ext_${INSTANCE//-/_}_index"
# The display names the functions give what they create (CreateIndexTrigger, OnIndexCreated); they
# look these up before creating, and uninstall finds every index and endpoint by them.
readonly INDEX_DISPLAY_NAME="ext-$INSTANCE-index"
readonly ENDPOINT_DISPLAY_NAME="ext-$INSTANCE-endpoint"
readonly INDEX_BACKEND=${CFG[INDEX_BACKEND]}
readonly VECTOR_COLLECTION_ID="vectors-$INSTANCE"
# The bundled MobileNetV2 (float32 and int8) gives 1280 numbers; another model's size is VECTOR_DIMENSION, or
# learned by createIndexTrigger when the backfill ends (the index is made then).
if [[ -z ${CFG[MODEL_URL]} ]]; then
  readonly VECTOR_DIMENSION=1280
else
  readonly VECTOR_DIMENSION=${CFG[VECTOR_DIMENSION]-}
fi
readonly TASK_FUNCTIONS=(backfillTrigger backfillTask datapointWriteTask)
readonly EVENT_FUNCTIONS=(createIndexTrigger onIndexCreated onIndexDeployed streamUpdateDatapoint streamRemoveDatapoint)
readonly ALL_FUNCTIONS=("${TASK_FUNCTIONS[@]}" "${EVENT_FUNCTIONS[@]}" queryIndex)
# Vertex AI's API and role only for that backend; with Firestore, createIndexTrigger finds (or makes) the vector
# index through the Firestore Admin API, and the vectors themselves are documents (roles/datastore.user).
if [[ $INDEX_BACKEND == vertex ]]; then
  BACKEND_APIS=(aiplatform.googleapis.com)
  BACKEND_ROLES=(roles/aiplatform.user)        # create, deploy and update the Vector Search index and endpoint
  QUERY_BACKEND_ROLES=(roles/aiplatform.viewer) # findNeighbors on the deployed index
else
  BACKEND_APIS=()
  BACKEND_ROLES=(roles/datastore.indexAdmin) # find or create the Firestore vector index
  QUERY_BACKEND_ROLES=()                     # findNearest reads the vector documents: roles/datastore.viewer
fi
readonly APIS=(
  "${BACKEND_APIS[@]}" eventarc.googleapis.com run.googleapis.com cloudfunctions.googleapis.com
  cloudbuild.googleapis.com artifactregistry.googleapis.com cloudtasks.googleapis.com
  firestore.googleapis.com storage.googleapis.com iam.googleapis.com pubsub.googleapis.com
  logging.googleapis.com
)
# Project-level roles of ext-<instance>, each with its reason. Firestore, Vertex AI and Eventarc
# grant these per project; storage and Cloud Tasks are granted per bucket and per queue instead.
readonly PROJECT_ROLES=(
  roles/datastore.user         # read and write the coordination documents in Firestore
  "${BACKEND_ROLES[@]}"
  roles/eventarc.eventReceiver # the Eventarc triggers run as this account and must receive events
)
# Project-level roles of exq-<instance> (queryIndex): read the metadata document, query the endpoint.
# findNeighbors needs aiplatform.indexEndpoints.queryVectors; the least predefined role that has it is Vertex AI
# Viewer: "Vertex AI roles and permissions" (https://cloud.google.com/iam/docs/roles-permissions/aiplatform) lists
# it under roles/aiplatform.viewer, beside aiplatform.indexEndpoints.get/list and no write permission on indexes
# or endpoints (the role's current, GA definition; its earlier Beta definition did not include queryVectors).
readonly QUERY_PROJECT_ROLES=(
  roles/datastore.viewer # read _ext-<instance>/metadata: is the index deployed, where is it
  "${QUERY_BACKEND_ROLES[@]}"
)
# Bucket-level roles of ext-<instance>: read the images, read and write the embeddings.
readonly IMAGES_BUCKET_ROLE=roles/storage.objectViewer
readonly EMBEDDINGS_BUCKET_ROLE=roles/storage.objectAdmin

function_name() { printf 'ext-%s-%s' "$INSTANCE" "$1"; }
project_dir() { printf '%s' "${1^}"; }
function_url() { printf 'https://%s-%s.cloudfunctions.net/%s' "$LOCATION" "$PROJECT_ID" "$(function_name "$1")"; }
# Tasks target the Cloud Run service's deterministic run.app URL (service = the function's name in
# lower case): Cloud Run counts Cloud Tasks deliveries as internal only at the run.app URL, and the
# task-queue functions accept internal traffic only. {FUNCTION} is filled in by the functions.
function_url_template() { printf 'https://{FUNCTION}-%s.%s.run.app' "$1" "$LOCATION"; }
run_url() { local name; name=$(function_name "$1"); printf 'https://%s-%s.%s.run.app' "${name,,}" "$2" "$LOCATION"; }

# ---------------------------------------------------------------------------------------------
# Running, or printing in dry-run
# ---------------------------------------------------------------------------------------------
QUOTED=""
# Sets QUOTED to the command as one shell line that a POSIX shell reads back to the same words.
quote_command() {
  local word out=""
  for word in "$@"; do
    if [[ ! $word =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      word="'${word//\'/\'\\\'\'}'"
    fi
    out+="${out:+ }$word"
  done
  QUOTED=$out
}

announce() {
  quote_command "$@"
  if ((DRY_RUN)); then
    printf '+ %s\n' "$QUOTED"
  else
    say "+ $QUOTED"
  fi
}

run() {
  announce "$@"
  ((DRY_RUN)) || "$@"
}

# Retries a command a few times: IAM changes on a new service account take a while to propagate.
run_retrying() {
  announce "$@"
  ((DRY_RUN)) && return 0
  local attempt
  for attempt in 1 2 3 4 5; do
    "$@" && return 0
    say "  (attempt $attempt failed; retrying in 15 s)"
    sleep 15
  done
  "$@"
}

# exists CMD...: true when a describe-style command succeeds. In dry-run it is printed and counts as
# absent, so the plan shows the create command that would follow.
exists() {
  announce "$@"
  ((DRY_RUN)) && return 1
  "$@" >/dev/null 2>&1
}

# capture VAR PLACEHOLDER CMD...: VAR = the command's output (trimmed); in dry-run the placeholder.
capture() {
  local __var=$1 __placeholder=$2 __out
  shift 2
  announce "$@"
  if ((DRY_RUN)); then
    printf -v "$__var" '%s' "$__placeholder"
  else
    __out=$("$@")
    printf -v "$__var" '%s' "$(trim "$__out")"
  fi
}

# tolerate PATTERN CMD...: runs CMD; a failure whose message matches PATTERN (extended regex,
# case-insensitive) counts as done, e.g. deleting something already gone. Other failures return 1.
tolerate() {
  local pattern=$1 rc=0 err
  shift
  announce "$@"
  ((DRY_RUN)) && return 0
  err=$(mktemp)
  "$@" 2>"$err" || rc=$?
  if ((rc != 0)); then
    if grep -Eqi -- "$pattern" "$err"; then
      say "  (nothing to do: $(head -n 1 "$err"))"
      rc=0
    else
      cat "$err" >&2
    fi
  fi
  rm -f "$err"
  return "$rc"
}

readonly GONE='NOT_FOUND|not found|does not exist|No URLs matched'

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ris-deploy.XXXXXX")
if ((DRY_RUN)) && [[ $MODE == install ]]; then
  # The plan names the generated env-vars file, so it stays for inspection.
  say "Dry run: nothing is read from or changed in the cloud. Generated files stay in $WORK_DIR."
else
  trap 'rm -rf "$WORK_DIR"' EXIT
fi
if ((DRY_RUN)); then
  :
elif ! command -v gcloud >/dev/null; then
  say "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------------------------

# The functions' environment as a YAML map.
write_env_vars_file() {
  local file=$1
  {
    printf '# Environment of the functions of extension instance %s (written by %s).\n' "$INSTANCE" "$SCRIPT_NAME"
    print_parameters
    printf "SERVICE_ACCOUNT_EMAIL: '%s'\n" "$SA_EMAIL"
    printf "FUNCTION_URL_TEMPLATE: '%s'\n" "$(function_url_template "$PROJECT_NUMBER")"
    printf "PROJECT_NUMBER: '%s'\n" "$PROJECT_NUMBER"
  } >"$file"
}

check_audit_logs() {
  local configs
  say "Checking the Data Access audit logs of Vertex AI (the onIndexCreated/onIndexDeployed triggers read them)..."
  capture configs "" gcloud projects get-iam-policy "$PROJECT_ID" --project="$PROJECT_ID" \
    '--flatten=auditConfigs[].auditLogConfigs[]' \
    '--format=csv[no-heading](auditConfigs.service,auditConfigs.auditLogConfigs.logType)'
  if ((DRY_RUN)); then
    say "  (dry run: not checked)"
    return 0
  fi
  local type missing=()
  for type in DATA_READ DATA_WRITE; do
    if ! grep -Eq "^(aiplatform\.googleapis\.com|allServices),$type\$" <<<"$configs"; then
      missing+=("$type")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  say "WARNING: the project's audit configuration lacks ${missing[*]} for aiplatform.googleapis.com."
  say "  Without Data Read and Data Write audit logs for the Vertex AI API the index may never be"
  say "  deployed. Enable them in the console (IAM & Admin > Audit Logs > Vertex AI API), or:"
  say "    gcloud projects get-iam-policy $PROJECT_ID --format=yaml > policy.yaml"
  say "    # add under auditConfigs:  - service: aiplatform.googleapis.com"
  say "    #                            auditLogConfigs: [{logType: DATA_READ}, {logType: DATA_WRITE}]"
  say "    gcloud projects set-iam-policy $PROJECT_ID policy.yaml"
}

# deploy_function NAME MEMORY TIMEOUT TRIGGER-FLAGS...: one of the eight internal functions, run as
# ext-<instance>, reachable only from inside the project (--ingress-settings=internal-only: Cloud Run
# admits Cloud Tasks and Eventarc deliveries of the same project as internal, see the README).
deploy_function() {
  deploy_as "$SA_EMAIL" internal-only "$@"
}

# The functions that embed images: only their projects reference shared/Embedding (ONNX Runtime, Skia, the bundled
# model). The others upload the source without it (.gcloudignore-without-model), so their builds carry none of it.
readonly EMBEDDING_FUNCTIONS=(backfillTask streamUpdateDatapoint datapointWriteTask queryIndex)

# source_flags NAME: the upload of NAME's build: the repository as .gcloudignore leaves it, without the model unless NAME embeds.
source_flags() {
  local embedding
  printf '%s\n' "--source=$REPO_ROOT"
  for embedding in "${EMBEDDING_FUNCTIONS[@]}"; do
    [[ $1 == "$embedding" ]] && return 0
  done
  printf '%s\n' "--ignore-file=.gcloudignore-without-model"
}

# deploy_as ACCOUNT INGRESS NAME MEMORY TIMEOUT TRIGGER-FLAGS...
deploy_as() {
  local account=$1 ingress=$2 fn=$3 memory=$4 timeout=$5 source
  shift 5
  mapfile -t source < <(source_flags "$fn")
  say "Deploying $(function_name "$fn")..."
  run gcloud functions deploy "$(function_name "$fn")" --gen2 --runtime=dotnet10 \
    --region="$LOCATION" --project="$PROJECT_ID" \
    "${source[@]}" --entry-point="ReverseImageSearch.Functions.$(project_dir "$fn")" \
    --set-build-env-vars="GOOGLE_BUILDABLE=functions/$(project_dir "$fn")" \
    --service-account="$account" --ingress-settings="$ingress" --env-vars-file="$ENV_VARS_FILE" \
    --memory="$memory" --timeout="$timeout" "$@" --quiet
  probe_health "$fn"
}

# probe_health NAME: points Cloud Run's startup and liveness probes of NAME's service at GET /health, which every
# function serves (shared/Gcp/Hosting/FunctionHealth.cs). gcloud functions deploy has no probe flags, and a function
# deployed through the Cloud Functions v2 API may also be managed through Cloud Run's, so they are set on the
# service (the function's name in lower case) right after each deploy. Startup: the 240 s window of Cloud Run's
# default TCP probe, passed only once the app answers HTTP. Liveness: a function that has not answered for about
# 90 s is restarted.
readonly HEALTH_PATH=/health
probe_health() {
  local service
  service=$(function_name "$1")
  run gcloud run services update "${service,,}" --region="$LOCATION" --project="$PROJECT_ID" \
    --startup-probe="httpGet.path=$HEALTH_PATH,periodSeconds=5,timeoutSeconds=5,failureThreshold=48" \
    --liveness-probe="httpGet.path=$HEALTH_PATH,periodSeconds=30,timeoutSeconds=10,failureThreshold=3" --quiet
}

# Only the extension's service account may call a non-public function: Cloud Tasks presents its
# OIDC token, Eventarc its trigger identity. Granted per function rather than project-wide.
allow_invoker() {
  run_retrying gcloud functions add-invoker-policy-binding "$(function_name "$1")" \
    --region="$LOCATION" --project="$PROJECT_ID" --member="$SA_MEMBER"
}

# ensure_queue NAME MAX-ATTEMPTS MIN-BACKOFF MAX-BACKOFF MAX-DISPATCHES-PER-SECOND MAX-CONCURRENT:
# the queue with its retry and rate limits, and ext-<instance> as its only enqueuer (granted on
# the queue, not the project).
ensure_queue() {
  local queue limits
  queue=$(function_name "$1")
  limits=(--max-attempts="$2" --min-backoff="$3" --max-backoff="$4"
    --max-dispatches-per-second="$5" --max-concurrent-dispatches="$6")
  if exists gcloud tasks queues describe "$queue" --location="$LOCATION" --project="$PROJECT_ID"; then
    run gcloud tasks queues update "$queue" --location="$LOCATION" --project="$PROJECT_ID" "${limits[@]}"
  else
    run gcloud tasks queues create "$queue" --location="$LOCATION" --project="$PROJECT_ID" "${limits[@]}"
  fi
  run_retrying gcloud tasks queues add-iam-policy-binding "$queue" --location="$LOCATION" --project="$PROJECT_ID" \
    --member="$SA_MEMBER" --role=roles/cloudtasks.enqueuer '--format=value(etag)'
}

# deploy_audit_log_functions EVENT-FLAGS...: onIndexCreated and onIndexDeployed (INDEX_BACKEND=vertex).
deploy_audit_log_functions() {
  deploy_function onIndexCreated 512Mi 540s \
    --trigger-event-filters=type=google.cloud.audit.log.v1.written \
    --trigger-event-filters=serviceName=aiplatform.googleapis.com \
    --trigger-event-filters=methodName=google.cloud.aiplatform.v1.IndexService.CreateIndex \
    --trigger-location=global "$@"
  allow_invoker onIndexCreated
  deploy_function onIndexDeployed 512Mi 540s \
    --trigger-event-filters=type=google.cloud.audit.log.v1.written \
    --trigger-event-filters=serviceName=aiplatform.googleapis.com \
    --trigger-event-filters=methodName=google.cloud.aiplatform.v1.IndexEndpointService.DeployIndex \
    --trigger-location=global "$@"
  allow_invoker onIndexDeployed
}

# INDEX_BACKEND=firestore: the flat vector index of the vector documents, made and awaited before any function
# runs, so search works from the first image; one that exists already is kept.
ensure_vector_index() {
  if [[ -z $VECTOR_DIMENSION ]]; then
    say "Firestore vector index: MODEL_URL is set and VECTOR_DIMENSION is not; createIndexTrigger makes the index"
    say "  when the backfill ends (searches fail until then). Set VECTOR_DIMENSION to make it now."
    return 0
  fi
  local vector_field="--field-config=field-path=embedding,vector-config={\"dimension\":\"$VECTOR_DIMENSION\",\"flat\":\"{}\"}"
  say "Firestore vector index on $VECTOR_COLLECTION_ID.embedding ($VECTOR_DIMENSION dimensions, waiting until it is ready)..."
  tolerate 'ALREADY_EXISTS|already exists' gcloud firestore indexes composite create \
    --collection-group="$VECTOR_COLLECTION_ID" --query-scope=collection "$vector_field" \
    '--database=(default)' --project="$PROJECT_ID"
  # A search restricted to a folder prefilters on the array of folders each vector document holds: that needs the
  # folders field ahead of the vector in an index of its own (an update adds it to an older installation).
  say "Firestore vector index on $VECTOR_COLLECTION_ID.folders + embedding, for searches within a folder..."
  tolerate 'ALREADY_EXISTS|already exists' gcloud firestore indexes composite create \
    --collection-group="$VECTOR_COLLECTION_ID" --query-scope=collection \
    --field-config=field-path=folders,array-config=contains "$vector_field" \
    '--database=(default)' --project="$PROJECT_ID"
}

PROJECT_NUMBER=""

# ensure_service_account NAME EMAIL DISPLAY_NAME ROLE...: create the account unless it exists, then grant it each
# project-level role (bindings are idempotent: a re-run changes nothing).
ensure_service_account() {
  local name=$1 email=$2 display_name=$3 role
  shift 3
  if ! exists gcloud iam service-accounts describe "$email" --project="$PROJECT_ID"; then
    run gcloud iam service-accounts create "$name" --project="$PROJECT_ID" "--display-name=$display_name"
  fi
  for role in "$@"; do
    run_retrying gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$email" \
      --role="$role" --condition=None --quiet '--format=value(etag)'
  done
}

install() {
  local role
  say "Enabling APIs..."
  run gcloud services enable "${APIS[@]}" --project="$PROJECT_ID"

  capture PROJECT_NUMBER "<project-number>" gcloud projects describe "$PROJECT_ID" '--format=value(projectNumber)'
  ENV_VARS_FILE="$WORK_DIR/env-vars.yaml"
  write_env_vars_file "$ENV_VARS_FILE"

  if [[ $INDEX_BACKEND == vertex ]]; then
    check_audit_logs
  fi

  say "Looking up locations..."
  local bucket_location firestore_location storage_agent
  if [[ -n ${CFG[IMG_BUCKET_LOCATION]-} ]]; then
    bucket_location=${CFG[IMG_BUCKET_LOCATION]}
  else
    capture bucket_location "<img-bucket-location>" gcloud storage buckets describe "gs://$IMG_BUCKET" \
      --project="$PROJECT_ID" '--format=value(location)'
    bucket_location=${bucket_location,,}
  fi
  if [[ -n ${CFG[FIRESTORE_LOCATION]-} ]]; then
    firestore_location=${CFG[FIRESTORE_LOCATION]}
  else
    capture firestore_location "<firestore-location>" gcloud firestore databases describe \
      '--database=(default)' --project="$PROJECT_ID" '--format=value(locationId)'
    firestore_location=${firestore_location,,}
  fi
  [[ -n $bucket_location ]] || { say "Could not find the location of gs://$IMG_BUCKET"; exit 1; }
  [[ -n $firestore_location ]] || { say "Could not find the (default) Firestore database; create it first"; exit 1; }
  say "  images bucket location: $bucket_location; Firestore location: $firestore_location"
  capture storage_agent "service-<project-number>@gs-project-accounts.iam.gserviceaccount.com" \
    gcloud storage service-agent --project="$PROJECT_ID"

  say "Service account $SA_EMAIL..."
  ensure_service_account "$SA_NAME" "$SA_EMAIL" "Reverse image search ($INSTANCE)" "${PROJECT_ROLES[@]}"
  run_retrying gcloud storage buckets add-iam-policy-binding "gs://$IMG_BUCKET" --project="$PROJECT_ID" \
    --member="$SA_MEMBER" --role="$IMAGES_BUCKET_ROLE" '--format=value(etag)'

  say "Service account $QUERY_SA_EMAIL (queryIndex)..."
  ensure_service_account "$QUERY_SA_NAME" "$QUERY_SA_EMAIL" "Reverse image search queries ($INSTANCE)" \
    "${QUERY_PROJECT_ROLES[@]}"
  # The functions put this account in the OIDC token of the tasks they enqueue; Cloud Tasks requires
  # the enqueuer to be allowed to act as that account (iam.serviceAccounts.actAs).
  run_retrying gcloud iam service-accounts add-iam-policy-binding "$SA_EMAIL" --project="$PROJECT_ID" \
    --member="$SA_MEMBER" --role=roles/iam.serviceAccountUser --quiet '--format=value(etag)'
  # Storage triggers: Cloud Storage publishes its events through Pub/Sub as its service agent.
  run_retrying gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    --member="serviceAccount:$storage_agent" --role=roles/pubsub.publisher --condition=None --quiet \
    '--format=value(etag)'

  say "Embeddings bucket $EMBEDDINGS_BUCKET..."
  if ! exists gcloud storage buckets describe "$EMBEDDINGS_BUCKET" --project="$PROJECT_ID"; then
    run gcloud storage buckets create "$EMBEDDINGS_BUCKET" --project="$PROJECT_ID" \
      --location="$LOCATION" --uniform-bucket-level-access
  fi
  run_retrying gcloud storage buckets add-iam-policy-binding "$EMBEDDINGS_BUCKET" --project="$PROJECT_ID" \
    --member="$SA_MEMBER" --role="$EMBEDDINGS_BUCKET_ROLE" '--format=value(etag)'

  if [[ $INDEX_BACKEND == firestore ]]; then
    ensure_vector_index
  fi

  # Queues before any function: the first enqueue must never meet a missing queue. Rate limits:
  # backfillTrigger runs one install at a time; backfillTask embeds BATCH_SIZE images per task with
  # 1 GiB each and counts progress on the one tasks document, so 10 at once (at most 5 starts a
  # second) keeps that document's transactions from contending while a large backfill runs;
  # datapointWriteTask makes one upsert per image.
  say "Task queues..."
  ensure_queue backfillTrigger 5 10s 300s 1 1
  ensure_queue backfillTask "${CFG[BACKFILL_MAX_ATTEMPTS]}" 1s 300s 5 10
  ensure_queue datapointWriteTask 10 10s 600s 10 20

  # Memory: the embedding functions load the ONNX model (target <= 512 MB resident, 1 GiB leaves
  # headroom); backfillTrigger embeds the first upload when there is no backfill, so it gets the same.
  local task_flags=(--trigger-http --no-allow-unauthenticated)
  deploy_function backfillTrigger 1GiB 540s "${task_flags[@]}"
  allow_invoker backfillTrigger
  deploy_function backfillTask 1GiB 540s "${task_flags[@]}"
  allow_invoker backfillTask
  deploy_function datapointWriteTask 1GiB 540s "${task_flags[@]}"
  allow_invoker datapointWriteTask

  # Event functions retry failed deliveries (--retry); their handlers are idempotent.
  local event_flags=(--trigger-service-account="$SA_EMAIL" --retry)
  deploy_function createIndexTrigger 512Mi 540s \
    --trigger-event-filters=type=google.cloud.firestore.document.v1.updated \
    '--trigger-event-filters=database=(default)' \
    --trigger-event-filters-path-pattern="document=_ext-$INSTANCE/tasks" \
    --trigger-location="$firestore_location" "${event_flags[@]}"
  allow_invoker createIndexTrigger
  # Vertex AI only: with Firestore no CreateIndex or DeployIndex audit entry ever comes (README, "Index backends").
  if [[ $INDEX_BACKEND == vertex ]]; then
    deploy_audit_log_functions "${event_flags[@]}"
  fi
  deploy_function streamUpdateDatapoint 1GiB 540s \
    --trigger-event-filters=type=google.cloud.storage.object.v1.finalized \
    --trigger-event-filters=bucket="$IMG_BUCKET" \
    --trigger-location="$bucket_location" "${event_flags[@]}"
  allow_invoker streamUpdateDatapoint
  deploy_function streamRemoveDatapoint 512Mi 540s \
    --trigger-event-filters=type=google.cloud.storage.object.v1.deleted \
    --trigger-event-filters=bucket="$IMG_BUCKET" \
    --trigger-location="$bucket_location" "${event_flags[@]}"
  allow_invoker streamRemoveDatapoint

  # The callable is public at the HTTP layer (apps call it from anywhere); the function verifies the
  # Firebase ID token itself and runs as the read-only query account.
  deploy_as "$QUERY_SA_EMAIL" all queryIndex 1GiB 120s --trigger-http --allow-unauthenticated

  if ((INSTALL_TASK)); then
    say "Enqueuing the install task (backfill)..."
    run gcloud tasks create-http-task --queue="$(function_name backfillTrigger)" \
      --location="$LOCATION" --project="$PROJECT_ID" --url="$(run_url backfillTrigger "$PROJECT_NUMBER")" \
      --method=POST '--header=Content-Type: application/json' '--body-content={"data":{}}' \
      --oidc-service-account-email="$SA_EMAIL"
  else
    say "Install task skipped (--no-install-task)."
  fi

  say ""
  ((DRY_RUN)) && say "Dry run complete: the plan above is what an install would run."
  say "Callable: $(function_url queryIndex)"
  say "Progress: Firestore documents _ext-$INSTANCE/tasks and _ext-$INSTANCE/metadata (see POSTINSTALL.md)."
}

# ---------------------------------------------------------------------------------------------
# Uninstall
# ---------------------------------------------------------------------------------------------
LEFTOVERS=()

# Runs a step; a failure is remembered and reported at the end instead of stopping the uninstall.
step() {
  if ! tolerate "$GONE" "$@"; then
    quote_command "$@"
    LEFTOVERS+=("$QUOTED")
  fi
}

# json_string FIELD JSON: the stringValue of a top-level field of a Firestore REST document.
json_string() {
  local flat
  flat=$(tr -d '\n' <<<"$2")
  if [[ $flat =~ \"$1\"[[:space:]]*:[[:space:]]*\{[[:space:]]*\"stringValue\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  fi
}

# Reads _ext-<instance>/metadata; sets INDEX and ENDPOINT (resource ids, possibly empty).
INDEX=""
ENDPOINT=""
read_metadata() {
  local token url status body_file body operation
  url="https://firestore.googleapis.com/v1/projects/$PROJECT_ID/databases/(default)/documents/_ext-$INSTANCE/metadata?mask.fieldPaths=index&mask.fieldPaths=indexEndpoint&mask.fieldPaths=operation"
  body_file="$WORK_DIR/metadata.json"
  capture token "<access-token>" gcloud auth print-access-token
  if ((DRY_RUN)); then
    announce curl -sS -o "$body_file" -w '%{http_code}' -H "Authorization: Bearer $token" "$url"
    INDEX="<index-id-from-metadata>"
    ENDPOINT="<index-endpoint-id-from-metadata>"
    return 0
  fi
  # The token is passed on stdin as a header file, so it shows neither in logs nor in `ps`.
  announce curl -sS -o "$body_file" -w '%{http_code}' -H @- "$url"
  status=$(printf 'Authorization: Bearer %s\n' "$token" | curl -sS -o "$body_file" -w '%{http_code}' -H @- "$url") || status=000
  body=$(cat "$body_file" 2>/dev/null || true)
  case $status in
    200) ;;
    404)
      say "  no metadata document: no index was created"
      return 0
      ;;
    *)
      say "  could not read the metadata document (HTTP $status): $body"
      LEFTOVERS+=("check for a Vector Search index and endpoint by hand: gcloud ai index-endpoints list --region=$LOCATION --project=$PROJECT_ID; gcloud ai indexes list --region=$LOCATION --project=$PROJECT_ID")
      return 0
      ;;
  esac
  INDEX=$(json_string index "$body")
  ENDPOINT=$(json_string indexEndpoint "$body")
  operation=$(json_string operation "$body")
  # While the index is still building the metadata holds only the operation: projects/P/locations/L/indexes/ID/operations/OP.
  if [[ -z $INDEX && $operation =~ /indexes/([^/]+)/operations/ ]]; then
    INDEX=${BASH_REMATCH[1]}
  fi
  INDEX=${INDEX##*/}
  ENDPOINT=${ENDPOINT##*/}
}

# INDEX_BACKEND=vertex: the Vector Search index and endpoints (found in the metadata document and by their id).
uninstall_vector_search() {
  say "Reading _ext-$INSTANCE/metadata..."
  read_metadata
  # An endpoint that carries our deployed index but is missing from the metadata (an interrupted
  # deployment) must not be left billing either.
  local listed
  capture listed "" gcloud ai index-endpoints list --region="$LOCATION" --project="$PROJECT_ID" \
    "--filter=deployedIndexes.id=$DEPLOYED_INDEX_ID" '--format=value(name)'
  # Every endpoint and index with the instance's display names too: one left by a creation whose
  # answer was lost, or by an earlier installation, bills as much as the recorded one.
  local named_endpoints named_indexes
  capture named_endpoints "" gcloud ai index-endpoints list --region="$LOCATION" --project="$PROJECT_ID" \
    "--filter=displayName=$ENDPOINT_DISPLAY_NAME" '--format=value(name)'
  capture named_indexes "" gcloud ai indexes list --region="$LOCATION" --project="$PROJECT_ID" \
    "--filter=displayName=$INDEX_DISPLAY_NAME" '--format=value(name)'
  local endpoints=() indexes=() name
  [[ -n $ENDPOINT ]] && endpoints+=("$ENDPOINT")
  [[ -n $INDEX ]] && indexes+=("$INDEX")
  while IFS= read -r name; do
    name=${name##*/}
    [[ -n $name && " ${endpoints[*]} " != *" $name "* ]] && endpoints+=("$name")
  done <<<"$listed"$'\n'"$named_endpoints"
  while IFS= read -r name; do
    name=${name##*/}
    [[ -n $name && " ${indexes[*]} " != *" $name "* ]] && indexes+=("$name")
  done <<<"$named_indexes"

  say "Vector Search: undeploying and deleting (they bill by node hour)..."
  for name in "${endpoints[@]}"; do
    step gcloud ai index-endpoints undeploy-index "$name" --deployed-index-id="$DEPLOYED_INDEX_ID" \
      --region="$LOCATION" --project="$PROJECT_ID"
    step gcloud ai index-endpoints delete "$name" --region="$LOCATION" --project="$PROJECT_ID" --quiet
  done
  for name in "${indexes[@]}"; do
    step gcloud ai indexes delete "$name" --region="$LOCATION" --project="$PROJECT_ID" --quiet
  done
  ((${#endpoints[@]} > 0 || ${#indexes[@]} > 0)) || say "  no index or endpoint found"
}

# INDEX_BACKEND=firestore: the vector documents and their vector index (said before it is done).
uninstall_vector_collection() {
  local listed name found=0
  say "Firestore vector search: deleting the vector index and every vector document of collection id"
  say "  $VECTOR_COLLECTION_ID (_ext-$INSTANCE/metadata/$VECTOR_COLLECTION_ID); a new install's backfill rebuilds them."
  capture listed "<vector-index-id>" gcloud firestore indexes composite list '--database=(default)' --project="$PROJECT_ID" \
    "--filter=name~/collectionGroups/$VECTOR_COLLECTION_ID/indexes/" '--format=value(name)'
  while IFS= read -r name; do
    [[ -n $name ]] || continue
    found=1
    step gcloud firestore indexes composite delete "${name##*/}" '--database=(default)' --project="$PROJECT_ID" --quiet
  done <<<"$listed"
  ((found)) || say "  no vector index found"
  step gcloud firestore bulk-delete --collection-ids="$VECTOR_COLLECTION_ID" '--database=(default)' --project="$PROJECT_ID" --quiet
}

# delete_collection PATH: every document of the collection at PATH (a page of names listed, their deletes written in
# one batchWrite, until none is left) through the Firestore REST API, since `gcloud firestore bulk-delete` takes
# collection ids across the whole database and another instance has collections named datapoints and enqueues too.
delete_collection() {
  local path=$1 token list_url write_url body writes name rest pages=0
  list_url="https://firestore.googleapis.com/v1/projects/$PROJECT_ID/databases/(default)/documents/$path?pageSize=300"
  write_url="https://firestore.googleapis.com/v1/projects/$PROJECT_ID/databases/(default)/documents:batchWrite"
  capture token "<access-token>" gcloud auth print-access-token
  if ((DRY_RUN)); then
    announce curl -sS -f -H "Authorization: Bearer $token" "$list_url"
    announce curl -sS -f -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data-binary '{"writes":[{"delete":"<each listed name>"}]}' "$write_url"
    return 0
  fi
  announce curl -sS -f -H @- "$list_url"
  while ((pages < 100000)); do
    # The token is passed on stdin as a header file, so it shows neither in logs nor in `ps`.
    if ! body=$(printf 'Authorization: Bearer %s\n' "$token" | curl -sS -f -H @- "$list_url"); then
      LEFTOVERS+=("delete the documents of $path (Firestore console, or: firebase firestore:delete --recursive $path --project $PROJECT_ID)")
      return 0
    fi
    writes=""
    rest=$body
    while [[ $rest =~ \"name\"[[:space:]]*:[[:space:]]*\"(projects/[^\"]+)\" ]]; do
      name=${BASH_REMATCH[1]}
      writes+="${writes:+,}{\"delete\":\"$name\"}"
      rest=${rest#*"$name"}
    done
    [[ -n $writes ]] || return 0
    if ! printf 'Authorization: Bearer %s\n' "$token" | curl -sS -f -X POST -H @- -H 'Content-Type: application/json' \
      --data-binary "{\"writes\":[$writes]}" "$write_url" >/dev/null; then
      LEFTOVERS+=("delete the documents of $path (Firestore console, or: firebase firestore:delete --recursive $path --project $PROJECT_ID)")
      return 0
    fi
    pages=$((pages + 1))
  done
}

# The coordination documents: without them a reinstall starts afresh and builds a new index (a kept metadata document
# would say INDEX_DEPLOYED for the index deleted above). After the functions, which would write them again.
uninstall_coordination_documents() {
  say "Firestore: deleting the coordination documents of _ext-$INSTANCE: metadata and tasks, the per-image records"
  say "  (_ext-$INSTANCE/metadata/datapoints) and the backfill chunks (_ext-$INSTANCE/tasks/enqueues); a reinstall starts afresh."
  delete_collection "_ext-$INSTANCE/metadata/datapoints"
  delete_collection "_ext-$INSTANCE/tasks/enqueues"
  step gcloud firestore bulk-delete --collection-ids="_ext-$INSTANCE" '--database=(default)' --project="$PROJECT_ID" --quiet
}

uninstall() {
  local fn
  if [[ $INDEX_BACKEND == firestore ]]; then
    uninstall_vector_collection
  else
    uninstall_vector_search
  fi

  say "Functions..."
  for fn in "${ALL_FUNCTIONS[@]}"; do
    step gcloud functions delete "$(function_name "$fn")" --gen2 --region="$LOCATION" --project="$PROJECT_ID" --quiet
  done

  say "Task queues (Cloud Tasks keeps a deleted queue's name reserved for about 7 days)..."
  for fn in "${TASK_FUNCTIONS[@]}"; do
    step gcloud tasks queues delete "$(function_name "$fn")" --location="$LOCATION" --project="$PROJECT_ID" --quiet
  done

  uninstall_coordination_documents

  if ((DELETE_DATA)); then
    say "Embeddings bucket $EMBEDDINGS_BUCKET and its contents..."
    step gcloud storage rm --recursive "$EMBEDDINGS_BUCKET" --project="$PROJECT_ID"
  else
    say "Keeping the embeddings bucket $EMBEDDINGS_BUCKET (pass --delete-data to delete it)."
  fi

  say "Service accounts $SA_EMAIL and $QUERY_SA_EMAIL..."
  local role
  for role in "${PROJECT_ROLES[@]}"; do
    step gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="$SA_MEMBER" --role="$role" \
      --condition=None --quiet '--format=value(etag)'
  done
  for role in "${QUERY_PROJECT_ROLES[@]}"; do
    step gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="$QUERY_SA_MEMBER" --role="$role" \
      --condition=None --quiet '--format=value(etag)'
  done
  step gcloud storage buckets remove-iam-policy-binding "gs://$IMG_BUCKET" --project="$PROJECT_ID" \
    --member="$SA_MEMBER" --role="$IMAGES_BUCKET_ROLE" '--format=value(etag)'
  step gcloud iam service-accounts delete "$SA_EMAIL" --project="$PROJECT_ID" --quiet
  step gcloud iam service-accounts delete "$QUERY_SA_EMAIL" --project="$PROJECT_ID" --quiet

  say ""
  say "The images bucket gs://$IMG_BUCKET is untouched."
  if ((${#LEFTOVERS[@]} > 0)); then
    say "Some steps failed; run these once the cause is fixed:"
    local left
    for left in "${LEFTOVERS[@]}"; do
      say "  $left"
    done
    exit 1
  fi
  if ((DRY_RUN)); then
    say "Dry run complete: the plan above is what an uninstall would run."
  else
    say "Uninstalled."
  fi
}

case $MODE in
  install) install ;;
  uninstall) uninstall ;;
esac
