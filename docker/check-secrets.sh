#!/bin/sh
# Refuse placeholder and missing secrets before any service uses them: the `secrets-check`
# service of compose.yml runs this, and the services that take a secret start only once it
# has succeeded. Compose itself can only refuse an unset or empty variable (${VAR:?}), not a
# value copied unchanged from .env.example.
#
#   sh check-secrets.sh ENV_EXAMPLE [SECRETS_DIR]
#
# ENV_EXAMPLE is docker/.env.example: a secret equal to its placeholder there is refused.
# The secrets come from the environment (GLASSCITY_PSEUDONYM_KEY, GRAFANA_ADMIN_PASSWORD) and,
# with SECRETS_DIR, from the Kafka password files in it (the mounted Compose secrets).
# Exit 0 when every secret is set and real, else 1 with one line per problem on stderr.
# A secret's value is never printed.
set -eu

example=${1:?usage: check-secrets.sh ENV_EXAMPLE [SECRETS_DIR]}
secrets_dir=${2:-}
[ -r "$example" ] || { echo "secrets-check: cannot read $example" >&2; exit 1; }
problems=0

refuse() {
    echo "secrets-check: $1" >&2
    problems=$((problems + 1))
}

# check NAME VALUE MIN_CHARACTERS WHERE
check() {
    name=$1 value=$2 least=$3 where=$4
    placeholder=$(sed -n "s/^$name=//p" "$example" | head -n 1)
    lowered=$(printf '%s' "$value" | tr '[:upper:]' '[:lower:]')
    if [ -z "$value" ]; then
        refuse "$name is not set: $where"
    elif [ -n "$placeholder" ] && [ "$value" = "$placeholder" ]; then
        refuse "$name is still the placeholder of .env.example: $where"
    else
        case $lowered in
            replace-with*|*change-me*|*changeme*|*change_me*|changeit|password|secret|admin|test)
                refuse "$name is a placeholder, not a secret: $where" ;;
            *)
                if [ "${#value}" -lt "$least" ]; then
                    refuse "$name is shorter than $least characters: $where"
                fi ;;
        esac
    fi
}

check GLASSCITY_PSEUDONYM_KEY "${GLASSCITY_PSEUDONYM_KEY-}" 16 \
    'put a random key into docker/.env, e.g. python3 -c "import secrets; print(secrets.token_hex(32))"'
check GRAFANA_ADMIN_PASSWORD "${GRAFANA_ADMIN_PASSWORD-}" 12 'put a real password into docker/.env'

if [ -n "$secrets_dir" ]; then
    found=0
    for file in "$secrets_dir"/*; do
        [ -f "$file" ] || continue
        found=$((found + 1))
        check "$(basename "$file")" "$(cat "$file")" 16 'run sh docker/make-secrets.sh (it writes random ones)'
    done
    [ "$found" -gt 0 ] || refuse "no Kafka password in $secrets_dir: run sh docker/make-secrets.sh"
fi

if [ "$problems" -gt 0 ]; then
    echo "secrets-check: refusing to start with $problems placeholder or missing secret(s)" >&2
    exit 1
fi
echo "secrets-check: every secret is set and none is a placeholder"
