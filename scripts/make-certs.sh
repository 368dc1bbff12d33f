#!/bin/sh
# Makes the certificates of Temporal's mutual TLS, once: a private CA, the
# frontend's server certificate, and a client certificate for each kind of
# client (api, worker, the temporal service's own calls, the Web UI server).
# What exists is kept, so running it on every start changes nothing.
#
#   scripts/make-certs.sh [CERT_DIR] [CA_DIR]
#
# CERT_DIR (default /app/certs) gets ca.pem and every certificate and key;
# CA_DIR (default /app/certs-ca) keeps the CA's key, which only this script
# needs. SERVER_NAMES: the names clients reach the frontend by (default
# "temporal localhost"; 127.0.0.1 is always added). DAYS: validity (825).
set -eu
umask 077
CERT_DIR=${1:-${CERT_DIR:-/app/certs}}
CA_DIR=${2:-${CA_DIR:-/app/certs-ca}}
SERVER_NAMES=${SERVER_NAMES:-temporal localhost}
DAYS=${DAYS:-825}
CLIENTS="api worker temporal-client ui"
mkdir -p "$CERT_DIR" "$CA_DIR"

have_all() {
  [ -s "$CERT_DIR/ca.pem" ] && [ -s "$CERT_DIR/server.pem" ] && [ -s "$CERT_DIR/server.key" ] || return 1
  for name in $CLIENTS; do [ -s "$CERT_DIR/$name.pem" ] && [ -s "$CERT_DIR/$name.key" ] || return 1; done
}
if have_all; then
  echo "certificates: present in $CERT_DIR, nothing made"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -s "$CA_DIR/ca.key" ] || [ ! -s "$CERT_DIR/ca.pem" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$CA_DIR/ca.key" -out "$CERT_DIR/ca.pem" -days 3650 -subj "/CN=video-scanner Temporal CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "certificates: made a CA"
fi

# leaf NAME EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
leaf() {
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' "$2" > "$work/$1.ext"
  [ -n "${3:-}" ] && printf 'subjectAltName=%s\n' "$3" >> "$work/$1.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$CERT_DIR/$1.key" -out "$work/$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$work/$1.csr" -CA "$CERT_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
    -CAserial "$CA_DIR/ca.srl" -days "$DAYS" -extfile "$work/$1.ext" -out "$CERT_DIR/$1.pem" 2>/dev/null
  echo "certificates: made $1"
}

sans="IP:127.0.0.1"
for name in $SERVER_NAMES; do sans="$sans,DNS:$name"; done
[ -s "$CERT_DIR/server.pem" ] && [ -s "$CERT_DIR/server.key" ] || leaf server serverAuth,clientAuth "$sans"
for name in $CLIENTS; do
  [ -s "$CERT_DIR/$name.pem" ] && [ -s "$CERT_DIR/$name.key" ] || leaf "$name" clientAuth
done
# Readable by the user every service runs as (the same one), by no one else.
chmod 600 "$CERT_DIR"/*.key
chmod 644 "$CERT_DIR"/*.pem
