"""The JavaScript runtime (web/, the npm package edgeinfer-web) against the Python runtime.

The Python runtime writes reference data (tests/web/references.py: predictions, stream steps,
feeds, snapshots, greedy generation, scores, the token ids of all 25,000 IMDB test reviews and the
character ids of the Tiny Shakespeare validation text); `node --test` runs the JavaScript tests
in web/test/ against them and writes its own snapshots; then Python restores those and takes the
next step. All of it twice: on the native backend (onnxruntime-node) and on onnxruntime-web's
wasm (EDGEINFER_WEB_BACKEND). Needs Node.js >= 20 and `cd web && npm ci`; torch-free.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer.snapshot import Snapshot
from tests.conftest import ROOT
from tests.web.references import write_references

pytestmark = pytest.mark.data  # the references hold all 25,000 IMDB test reviews and MNIST digits

WEB = ROOT / "web"
# test files with a driver of their own (tests/web/test_web_image.py runs image.test.js)
OWN_DRIVER = {"image.test.js"}
TOL = 1e-5
NODE_TIMEOUT_S = 300


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the JavaScript runtime's tests need Node.js >= 20")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1)) if re.match(r"v(\d+)", version) else 0
    if major < 20:
        pytest.fail(f"node {version} is too old; the JavaScript runtime needs Node.js >= 20")
    return node


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The Python references, written once for both backends."""
    refs = tmp_path_factory.mktemp("web-refs")
    try:
        manifest = write_references(refs)
    except FileNotFoundError as exc:
        pytest.fail(f"real data needed: {exc}")
    return refs, manifest


@pytest.fixture(scope="module", params=["node", "wasm"])
def node_run(request: pytest.FixtureRequest,
             references: tuple[Path, dict]) -> tuple[subprocess.CompletedProcess[str], Path, dict]:
    """Run every JavaScript test file against the references on one backend (once per backend)."""
    node = _node()
    backend = request.param
    if backend == "node" and not (WEB / "node_modules" / "onnxruntime-node" / "package.json").is_file():
        pytest.fail("web/node_modules/onnxruntime-node is missing (an optional dependency): run "
                    "`cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci`")
    installed = WEB / "node_modules" / "onnxruntime-web" / "package.json"
    if not installed.is_file():
        pytest.fail("web/node_modules is missing: run `cd web && npm ci`")
    pinned = json.loads((WEB / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    if json.loads(installed.read_text())["version"] != pinned:
        pytest.fail(f"web/node_modules holds another onnxruntime-web than {pinned}: run `cd web && npm ci`")
    refs, manifest = references
    out = refs / f"js-{backend}"
    files = sorted(p.name for p in (WEB / "test").glob("*.test.js") if p.name not in OWN_DRIVER)
    env = {**os.environ, "EDGEINFER_WEB_REFS": str(refs), "EDGEINFER_WEB_OUT": str(out),
           "EDGEINFER_WEB_BACKEND": backend}
    run = subprocess.run([node, "--test", "--test-reporter=tap", *(f"test/{f}" for f in files)], cwd=WEB, env=env,
                         capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    return run, out, manifest


def test_node_tests_pass_against_python_references(node_run) -> None:
    run, _, _ = node_run
    output = run.stdout + run.stderr
    failed = "\n".join(line for line in run.stdout.splitlines() if line.startswith("not ok") or "error:" in line)
    assert run.returncode == 0, f"node --test failed:\n{failed}\n---\n{output[-8000:]}"
    counts = dict(re.findall(r"^# (pass|fail|skipped|cancelled|todo) (\d+)$", run.stdout, re.MULTILINE))
    assert counts.get("fail") == "0" and counts.get("cancelled") == "0", output[-4000:]
    assert counts.get("skipped") == "0", f"node skipped tests (were the references found?):\n{output[-4000:]}"
    assert int(counts.get("pass", "0")) >= 40, output[-4000:]


@pytest.mark.parametrize("name", ["digits", "sentiment", "characters"])
def test_python_continues_a_stream_snapshot_from_js(node_run, name: str) -> None:
    """JavaScript restored Python's snapshot, stepped on and took a snapshot: Python reads its
    bytes (and writes them back byte for byte), gets its state bit for bit, and takes the next step."""
    run, out, manifest = node_run
    assert run.returncode == 0, "the node tests failed; see test_node_tests_pass_against_python_references"
    ref = manifest["models"][name]
    info = json.loads((out / f"{name}.js.json").read_text())
    data = (out / f"{name}.js.npz").read_bytes()
    snap = Snapshot.from_bytes(data)
    assert snap.to_bytes() == data
    assert snap.model == ref["fingerprint"] and snap.steps == info["steps"]
    model = edgeinfer.load(ref["path"], intra_op_threads=1)
    for key in info["state"]:
        js_state = np.fromfile(out / f"{name}.js.{key}.f32", "<f4").reshape(snap.state[key].shape)
        assert np.array_equal(snap.state[key], js_state), key
    stream = model.stream()
    stream.restore(data)
    spec = ref["inputs"]
    inputs = np.fromfile(out.parent / spec["file"], np.dtype(spec["dtype"]).newbyteorder("<")).reshape(spec["dims"])
    x = inputs[info["next"]]
    probs = stream.step(x if inputs.ndim == 2 else int(x))
    np.testing.assert_allclose(probs, np.array(info["probs"], np.float32), atol=TOL, rtol=0)
    assert stream.steps == info["steps"] + 1

