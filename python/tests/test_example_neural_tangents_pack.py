"""The conformance pack run through neural-tangents (examples/python/run_neural_tangents.py) passes
at NT's own tolerance table (examples/python/neural_tangents.toml), and — the counterfactual — not
at the default table (NT's arccos angle gives 8.25 / 8.74 / 8.83 digits on three NTK cases).
Skipped where neural-tangents is not installed or no `gbml` binary is found (GBML_BIN, else
target/release/gbml of this repository)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("neural_tangents")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GBML = os.environ.get("GBML_BIN", os.path.join(ROOT, "target", "release", "gbml"))
if not os.path.exists(GBML):
    pytest.skip(f"no gbml binary at {GBML}", allow_module_level=True)
SCRIPT = os.path.join(ROOT, "examples", "python", "run_neural_tangents.py")
TABLE = os.path.join(ROOT, "examples", "python", "neural_tangents.toml")


def run(pack, *extra):
    env = dict(os.environ, JAX_ENABLE_X64="1")
    return subprocess.run([sys.executable, SCRIPT, str(pack), "--gbml", GBML, *extra],
                          capture_output=True, text=True, env=env)


def test_neural_tangents_pack_passes_at_its_table_and_not_at_the_default(tmp_path):
    pack = tmp_path / "pack"
    subprocess.run([GBML, "compare", "export", str(pack)], check=True, capture_output=True)
    ok = run(pack, "--tolerances", TABLE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    verdicts = [l.split()[0] for l in ok.stdout.splitlines() if l.startswith(("PASS", "MISMATCH"))]
    assert len(verdicts) == 18 and set(verdicts) == {"PASS"}, ok.stdout
    strict = run(pack)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    bad = [l for l in strict.stdout.splitlines() if l.startswith("MISMATCH")]
    assert len(bad) == 3 and all(" ntk " in l for l in bad), strict.stdout
