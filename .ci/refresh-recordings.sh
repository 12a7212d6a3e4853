#!/usr/bin/env bash
# Refresh the bundled recordings in harness/data/recordings/ from a real llama.cpp server
# (SmolLM2-135M-Instruct, started by .ci/real-server.sh with its tool-capable template), replacing the old
# set only when the new one is complete. Usage: bash .ci/refresh-recordings.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT=${PORT:-18085} TOOLS=1 PARALLEL=${PARALLEL:-1}
NAME=llama.cpp-smollm2
DEST=harness/data/recordings
CASES=harness/data/cases
trap 'bash .ci/real-server.sh stop' EXIT
line=$(bash .ci/real-server.sh start | tail -1)
eval "$line"
tmp=$(mktemp -d "$DEST.new.XXXXXX")
# The run's exit code reports llama.cpp's deviations (1); only a usage or internal error (2 and up) stops us.
set +e
harness run "$CASES" --base-url "$BASE_URL" --model "$MODEL" --name "$NAME" --record "$tmp" --report-dir "$tmp/.report" >/dev/null
rc=$?
set -e
if [[ $rc -ge 2 ]]; then echo "recording failed (exit $rc); $DEST/ left as it was" >&2; rm -rf "$tmp"; exit "$rc"; fi
rm -rf "$tmp/.report"
mkdir -p "$DEST"
rm -rf "${DEST:?}/$NAME"
mv "$tmp/$NAME" "$DEST/$NAME"
rmdir "$tmp"
echo "recorded $(ls "$DEST/$NAME" | wc -l) cases into $DEST/$NAME from $BASE_URL ($MODEL)"
