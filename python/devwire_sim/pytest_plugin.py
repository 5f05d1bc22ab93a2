"""A pytest plugin: the ``devwire_sim`` fixture is a factory that starts
simulators and stops every one of them at the end of the test, whatever
happens::

    def test_driver(devwire_sim):
        sim = devwire_sim({"rules": [{"when": "*IDN?", "reply": "ACME"}]})
        ...

A script is a path, or a dict written to a file in the test's tmp_path.
``devwire_sim(upstream=sim.address())`` starts a fault proxy in front of
another simulator (or a device), ``record=True`` a recorder writing to a
file in tmp_path (``sim.record``). ``--devwire-sim PATH`` names the
program (else $DEVWIRE_SIM, else PATH).
"""

from __future__ import annotations

import json
import os

import pytest

from . import DevwireSim


def pytest_addoption(parser):
    parser.addoption("--devwire-sim", default=None, help="the devwire-sim program to test with")


@pytest.fixture
def devwire_sim(request, tmp_path):
    sims = []
    executable = request.config.getoption("--devwire-sim") or os.environ.get("DEVWIRE_SIM")

    def start(script=None, *, bench=None, **kwargs):
        if isinstance(script, dict):
            path = tmp_path / f"script{len(sims)}.json"
            path.write_text(json.dumps(script))
            script = str(path)
        if kwargs.get("record") is True:
            kwargs["record"] = str(tmp_path / f"recording{len(sims)}.json")
        kwargs.setdefault("executable", executable)
        sim = DevwireSim(script, bench=bench, **kwargs)
        sims.append(sim)
        return sim.start()

    yield start
    for sim in sims:
        sim.stop()
