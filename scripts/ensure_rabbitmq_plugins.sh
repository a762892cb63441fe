#!/usr/bin/env bash
# The tests (and `make run`) route frames through RabbitMQ's consistent-hash exchange
# (services/common/topology.py), a plugin that ships with RabbitMQ but is off by default:
# enable it on the local broker if it is not enabled yet. Idempotent; needs rabbitmq-plugins
# (run as root, or through sudo) on the machine that runs the broker.
set -euo pipefail
PLUGIN=rabbitmq_consistent_hash_exchange
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
CTL=$(command -v rabbitmq-plugins || echo /usr/sbin/rabbitmq-plugins)
if [ ! -x "$CTL" ]; then
    echo "rabbitmq-plugins not found: install RabbitMQ (3.10 or later) or enable $PLUGIN on your broker" >&2
    exit 1
fi
if $SUDO "$CTL" -q list --enabled --minimal 2>/dev/null | grep -qx "$PLUGIN"; then exit 0; fi
echo "enabling RabbitMQ's $PLUGIN plugin..."
$SUDO "$CTL" -q enable "$PLUGIN" >/dev/null
