#!/bin/sh
# Write a random password for each Kafka principal of docker/compose.yml into docker/secrets/
# (kept: an existing file is left alone). The files are Compose secrets, mounted read-only at
# /run/secrets/<name> in the services that need them; never commit them (.gitignore has them).
#
#   sh docker/make-secrets.sh
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 700 "$dir"   # only you on this host; inside the containers each file is readable by the service
for name in worker topics ingress operations welfare registrar auditor; do
  file="$dir/$name.password"
  if [ -s "$file" ]; then
    echo "kept    $file"
    continue
  fi
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$file"
  chmod 644 "$file"
  echo "written $file"
done
