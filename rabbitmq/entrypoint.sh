#!/bin/sh
# Entrypoint wrapper of the rabbitmq service (docker-compose.yml): writes the definitions the
# broker imports at boot (rabbitmq.conf), then hands over to the image's own entrypoint.
#
# Why a wrapper: when a blank node imports definitions at boot it does not create the default
# user (RABBITMQ_DEFAULT_USER/PASS are ignored), so the application user must come from the
# definitions too, and its password must not be committed. The definitions' "password" field
# takes the plain text password and RabbitMQ hashes it on import; an existing user gets the new
# password at the next start, so changing RABBITMQ_PASSWORD in .env only needs a restart.
#
# Usage: entrypoint.sh COMMAND... (compose passes the image's: docker-entrypoint.sh rabbitmq-server)
# ATTENDANCE_DEFINITIONS_DIR overrides where the files go (the unit tests write to a temp dir).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
target=${ATTENDANCE_DEFINITIONS_DIR:-/etc/rabbitmq/definitions.d}

# One broker user per service (issue 9, least privilege): its name is the service's, its
# password RABBITMQ_<SERVICE>_PASSWORD, its rights rabbitmq/permissions.json (generated from
# services/common/topology.py: `python -m services.common.topology permissions`).
# RABBITMQ_USER is the operator's (the management UI), with every right; no service uses it.
services="capture recognizer recorder api web"

: "${RABBITMQ_USER:?is not set: set it in .env (see .env.example)}"
: "${RABBITMQ_PASSWORD:?is not set: set it in .env (see .env.example)}"
secrets="${RABBITMQ_USER}${RABBITMQ_PASSWORD}"
for service in $services; do
    variable="RABBITMQ_$(echo "$service" | tr a-z A-Z)_PASSWORD"
    eval "password=\${$variable:-}"
    if [ -z "$password" ]; then
        echo "rabbitmq entrypoint: $variable: is not set: set it in .env (see .env.example)" >&2
        exit 64
    fi
    secrets="${secrets}${password}"
done

# They go unescaped into this JSON and into the services' AMQP_URL (amqp://user:password@...),
# so only characters that need no escaping in either are accepted.
case "$secrets" in
    *[!A-Za-z0-9._~-]*)
        echo "rabbitmq entrypoint: RABBITMQ_USER and the RABBITMQ_*PASSWORD variables may contain only letters," \
            "digits and . _ ~ - (e.g. a password from: openssl rand -hex 24)" >&2
        exit 64
        ;;
esac

# The passwords land in a file: readable by the broker's user only.
umask 077
mkdir -p "$target"
# RabbitMQ imports every file of the directory, so nothing stale may stay there.
rm -f "$target"/*
cp "$here/definitions.json" "$target/10-topology.json"
# Files are imported one by one in name order: the topology (which creates the vhost "/")
# comes first, then the users, then the services' permissions on "/" (30-).
{
    echo '{'
    echo '  "users": ['
    printf '    {"name": "%s", "password": "%s", "tags": ["management"]}' "$RABBITMQ_USER" "$RABBITMQ_PASSWORD"
    for service in $services; do
        variable="RABBITMQ_$(echo "$service" | tr a-z A-Z)_PASSWORD"
        eval "password=\${$variable}"
        printf ',\n    {"name": "%s", "password": "%s", "tags": []}' "$service" "$password"
    done
    echo
    echo '  ],'
    echo '  "permissions": ['
    printf '    {"user": "%s", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}\n' "$RABBITMQ_USER"
    echo '  ]'
    echo '}'
} >"$target/20-users.json"
cp "$here/permissions.json" "$target/30-permissions.json"

# A node of a cluster (docker-compose.cluster.yml): the nodes, and rabbitmqctl on each, must
# share one Erlang cookie. It comes from RABBITMQ_CLUSTER_COOKIE (not the image's deprecated
# RABBITMQ_ERLANG_COOKIE, which 4.x no longer writes), into the file RabbitMQ reads.
if [ -n "${RABBITMQ_CLUSTER_COOKIE:-}" ]; then
    case "$RABBITMQ_CLUSTER_COOKIE" in
        *[!A-Za-z0-9]*)
            echo "rabbitmq entrypoint: RABBITMQ_CLUSTER_COOKIE may contain only letters and digits" >&2
            exit 64
            ;;
    esac
    cookie=${ATTENDANCE_COOKIE_FILE:-/var/lib/rabbitmq/.erlang.cookie}
    rm -f "$cookie"
    printf '%s' "$RABBITMQ_CLUSTER_COOKIE" >"$cookie"
    chmod 400 "$cookie"
    if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
        chown rabbitmq:rabbitmq "$cookie"
    fi
fi
unset RABBITMQ_CLUSTER_COOKIE

# The image's entrypoint steps down from root to the rabbitmq user, which must read the files.
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq:rabbitmq "$target"
fi

# The broker itself does not need the passwords in its environment.
unset RABBITMQ_PASSWORD password
for service in $services; do
    unset "RABBITMQ_$(echo "$service" | tr a-z A-Z)_PASSWORD"
done
exec "$@"
