#!/usr/bin/env bash
# Chaos run: well-behaved clients, checked, next to misbehaving ones (silent,
# half a frame, byte by byte, oversized, garbage, reset mid-reply, past the
# connection limit), against the bare devwire TCP server and devwire-sim.
# The same options as scripts/soak.sh (--quick, --build-dir DIR, --no-build).
# Usage: scripts/chaos.sh [--quick] [--build-dir DIR] [--no-build]
exec "$(dirname "$0")/soak.sh" --chaos "$@"
