#!/bin/bash
# One-shot set-up of the broker's users and ACLs: the kafka-setup service of docker/compose.yml.
#
# It shares the broker's network namespace (network_mode: service:kafka), so it reaches the
# broker's loopback-only listener 127.0.0.1:9091, whose principal (User:ANONYMOUS, the broker's
# own inter-broker and controller traffic) is the only super user. No other container can reach
# that listener; every other client logs in with SCRAM-SHA-512 and is held to the ACLs.
#
# 1. For every "user:secret" in GLASSCITY_SCRAM_USERS, set the user's SCRAM-SHA-512 credential
#    from /run/secrets/<secret> (through a private properties file, never on a command line).
# 2. Run the ACL script made by `glasscity acls --format script` (the acls service).
set -euo pipefail

kafka_bin="${KAFKA_BIN:-/opt/kafka/bin}"
bootstrap="${GLASSCITY_SETUP_BOOTSTRAP:-127.0.0.1:9091}"
secrets_dir="${GLASSCITY_SETUP_CREDENTIALS_DIR:-/run/secrets}"
acl_script="${GLASSCITY_ACL_SCRIPT:-/acls/acls.sh}"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for entry in ${GLASSCITY_SCRAM_USERS:?set GLASSCITY_SCRAM_USERS to "user:secret ..."}; do
  user="${entry%%:*}"
  secret_file="$secrets_dir/${entry#*:}"
  if [ ! -s "$secret_file" ]; then
    echo "kafka-setup: $secret_file (the password of $user) is missing or empty; run docker/make-secrets.sh" >&2
    exit 1
  fi
  secret="$(head -n 1 "$secret_file" | tr -d '\r\n')"
  if ! [[ "$secret" =~ ^[A-Za-z0-9._~+/-]{16,}$ ]]; then
    echo "kafka-setup: the password of $user in $secret_file must be 16+ characters of A-Z a-z 0-9 . _ ~ + / -" >&2
    exit 1
  fi
  printf 'SCRAM-SHA-512=iterations=8192,password=%s\n' "$secret" > "$work/credential.properties"
  "$kafka_bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter --entity-type users \
    --entity-name "$user" --add-config-file "$work/credential.properties"
  rm -f "$work/credential.properties"
  echo "kafka-setup: SCRAM-SHA-512 credential of User:$user set"
done

if [ ! -s "$acl_script" ]; then
  echo "kafka-setup: no ACL script at $acl_script (the acls service writes it)" >&2
  exit 1
fi
KAFKA_ACLS="$kafka_bin/kafka-acls.sh" sh "$acl_script"
echo "kafka-setup: ACLs applied from $acl_script"
