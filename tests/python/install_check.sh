#!/bin/sh
# The Python package installed the way docs/control.md ("Installing the
# Python package") says, then used by a project of its own: a scratch venv
# in a temporary directory that sees Debian's packages (pytest), the package
# installed into it by pip with no network and no build isolation, and a
# test file using the devwire_sim fixture run with neither -p nor
# PYTHONPATH, from outside the source tree.
# Usage: install_check.sh PYTHON3 PACKAGE_DIR DEVWIRE_SIM
set -eu
py=$1 src=$2
sim=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/devwire-py-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

# A copy: pip builds in the package's directory (build/, *.egg-info).
mkdir "$tmp/src"
cp -R "$src/pyproject.toml" "$src/devwire_sim" "$tmp/src/"

"$py" -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --no-build-isolation "$tmp/src"
rm -rf "$tmp/src"   # what runs now is what pip installed

mkdir "$tmp/project"
cat >"$tmp/project/test_user.py" <<'PY'
import socket

import devwire_sim


def test_the_package_is_the_installed_one():
    assert "/venv/" in devwire_sim.__file__, devwire_sim.__file__


def test_the_fixture_serves_a_device(devwire_sim):
    sim = devwire_sim({"rules": [{"when": "*IDN?", "reply": "INSTALLED"}]})
    with socket.create_connection(sim.address(), timeout=20) as s:
        s.sendall(b"*IDN?\n")
        assert s.makefile().readline() == "INSTALLED\n"
    sim.verify([{"request": "*IDN?", "count": 1}])
    assert "requests: 1" in sim.stop()
PY
cd "$tmp/project"
DEVWIRE_SIM=$sim "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider test_user.py
