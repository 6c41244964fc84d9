#!/usr/bin/env bash
# ModSecurity + OWASP Core Rule Set (Debian packages) on mamori's CSIC 2010 test requests, paranoia levels 1-4,
# next to mamori's figures on the same requests.
#
#   benchmarks/crs_csic.sh [--data-dir DIR] [--mamori results-csic.json] [--work DIR] [--threads N]
#
# Needs root (apt-get) the first time. Everything listens on 127.0.0.1 only and is stopped at the end.
# Two traps this setup avoids (see ../shared/THREATS.md):
#  1. CRS >= 3.3.3 lists Accept-Charset among tx.restricted_headers, and every CSIC request sends one: the stock
#     setup flags 100% of requests. Rule 900250 is redefined without /accept-charset/.
#  2. An nginx location answering with `return 200` ends the request before ModSecurity inspects arguments
#     and bodies: the ModSecurity server proxies to a separate backend server instead.
# Scores: CRS runs in DetectionOnly mode (nothing is blocked) and a phase-5 rule logs each request's inbound
# anomaly score with the replay id, so TPR at 1% FPR and ROC-AUC can be computed over all thresholds.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA_DIR="${MAMORI_DATA_DIR:-$ROOT/../shared/data}"
WORK="$(mktemp -d /tmp/mamori-crs.XXXXXX)"
MAMORI_JSON=""
THREADS=4
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --mamori) MAMORI_JSON="$2"; shift 2 ;;
    --work) WORK="$2"; mkdir -p "$WORK"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PY="$ROOT/.venv/bin/python"

if ! dpkg -s nginx libnginx-mod-http-modsecurity modsecurity-crs >/dev/null 2>&1; then
  echo "installing nginx, libnginx-mod-http-modsecurity, modsecurity-crs from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx libnginx-mod-http-modsecurity modsecurity-crs >&2
fi
CRS_VERSION="$(dpkg-query -W -f='${Version}' modsecurity-crs)"
NGINX_VERSION="$(dpkg-query -W -f='${Version}' nginx)"
MODSEC_VERSION="$(dpkg-query -W -f='${Version}' libnginx-mod-http-modsecurity)"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WAF_PORT="$(free_port)"
BACKEND_PORT="$(free_port)"

echo "exporting mamori's CSIC test split (deduplicated, seed 0)" >&2
"$PY" "$ROOT/benchmarks/crs_replay.py" export --data-dir "$DATA_DIR" --out "$WORK/requests.jsonl"

MODULE="$(ls /usr/lib/nginx/modules/ngx_http_modsecurity_module.so)"
NGINX_PID=""
cleanup() {
  if [[ -n "$NGINX_PID" ]] && kill -0 "$NGINX_PID" 2>/dev/null; then kill "$NGINX_PID"; fi
}
trap cleanup EXIT

for PL in 1 2 3 4; do
  cat > "$WORK/modsec-pl$PL.conf" <<CONF
Include /etc/nginx/modsecurity.conf
SecRuleEngine DetectionOnly
SecAuditEngine Off
SecDebugLogLevel 0
Include /etc/modsecurity/crs/crs-setup.conf
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=$PL"
SecAction "id:900250,phase:1,nolog,pass,t:none,setvar:'tx.restricted_headers=/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/'"
Include /usr/share/modsecurity-crs/rules/*.conf
SecAction "id:9999001,phase:5,pass,log,msg:'mamori-score %{REQUEST_HEADERS.X-Mamori-Id} %{TX.ANOMALY_SCORE}'"
CONF
  cat > "$WORK/nginx-pl$PL.conf" <<CONF
load_module $MODULE;
daemon off;
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/error-pl$PL.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fastcgi;
  uwsgi_temp_path $WORK/uwsgi;
  scgi_temp_path $WORK/scgi;
  large_client_header_buffers 4 32k;
  server {
    listen 127.0.0.1:$WAF_PORT;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec-pl$PL.conf;
    location / { proxy_pass http://127.0.0.1:$BACKEND_PORT; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$BACKEND_PORT;
    location / { return 200 "ok\n"; }
  }
}
CONF
  : > "$WORK/error-pl$PL.log"
  nginx -t -c "$WORK/nginx-pl$PL.conf" -p "$WORK" >/dev/null 2>&1 || { nginx -t -c "$WORK/nginx-pl$PL.conf" -p "$WORK"; exit 1; }
  nginx -c "$WORK/nginx-pl$PL.conf" -p "$WORK" &
  NGINX_PID=$!
  for _ in $(seq 50); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $WAF_PORT), 0.2)" 2>/dev/null && break
    sleep 0.2
  done
  echo "paranoia level $PL: replaying on 127.0.0.1:$WAF_PORT" >&2
  "$PY" "$ROOT/benchmarks/crs_replay.py" replay --requests "$WORK/requests.jsonl" --port "$WAF_PORT" \
    --threads "$THREADS" > "$WORK/replay-pl$PL.json"
  cat "$WORK/replay-pl$PL.json" >&2
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=""
done

"$PY" "$ROOT/benchmarks/crs_replay.py" score --requests "$WORK/requests.jsonl" --work "$WORK" \
  --data-dir "$DATA_DIR" ${MAMORI_JSON:+--mamori "$MAMORI_JSON"}
echo "nginx $NGINX_VERSION, libnginx-mod-http-modsecurity $MODSEC_VERSION, modsecurity-crs $CRS_VERSION; seed 0; $(nproc) cpus; work dir $WORK"
