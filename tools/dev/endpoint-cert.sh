#!/usr/bin/env bash
# Makes the certificate the gateway's TLS listeners present on a development machine: a
# private "fleetcore local endpoint CA" and, signed by it, a server certificate for
# localhost and 127.0.0.1. Devices trust ca.pem the way AWS devices trust Amazon Root CA 1.
#
#   tools/dev/endpoint-cert.sh DIR     writes DIR/ca.pem, DIR/endpoint.pem, DIR/endpoint.key
#
# Idempotent: an existing certificate is kept while it has more than a day to live. The
# keys are made with mode 0600 in a 0700 folder; the CA's key is deleted once it has signed.
set -euo pipefail
dir=${1:?usage: endpoint-cert.sh DIR}
mkdir -p "$dir"
chmod 700 "$dir"
if [[ -s "$dir/endpoint.pem" && -s "$dir/endpoint.key" && -s "$dir/ca.pem" ]] &&
  openssl x509 -in "$dir/endpoint.pem" -noout -checkend 86400 >/dev/null; then
  exit 0
fi
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/O=fleetcore/CN=fleetcore local endpoint CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/O=fleetcore/CN=localhost" -keyout "$work/endpoint.key" -out "$work/endpoint.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" >"$work/ext"
openssl x509 -req -in "$work/endpoint.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 825 -extfile "$work/ext" -out "$work/endpoint-only.pem" 2>/dev/null
cat "$work/endpoint-only.pem" "$work/ca.pem" >"$dir/endpoint.pem"
install -m 600 "$work/endpoint.key" "$dir/endpoint.key"
install -m 644 "$work/ca.pem" "$dir/ca.pem"
chmod 644 "$dir/endpoint.pem"
