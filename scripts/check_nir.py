#!/usr/bin/env python3
"""Checks a NIR file written by `runner export` with the Python `nir` package.

    pip install nir            # (1.0.x; brings h5py and numpy)
    python3 scripts/check_nir.py out/quickstart_robust.nir

Loads the file with `nir.read` (which type-checks the graph: every edge's shapes agree) and
compares it with `<file>.summary.json`, which `runner export` writes from the graph it
serialised: the same node names and types, the same edges, every integer field equal, and
every float parameter with the same shape, sum and sum of absolute values (to 1e-6
relative). Also checks the structure of each soft-reset slot (integrator -> threshold ->
scale by -theta back into the integrator, and scale by +theta onwards). Exits non-zero on the
first mismatch; prints a one-line summary when everything matches.
"""
import json
import sys

import numpy as np

import nir


def fail(msg):
    print(f"MISMATCH: {msg}", file=sys.stderr)
    sys.exit(1)


def close(a, b):
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def main(path):
    try:
        with open(path + ".summary.json") as f:
            want = json.load(f)
    except FileNotFoundError:
        fail(f"{path}.summary.json not found: it is written by `runner export` beside the file")
    graph = nir.read(path)  # type_check=True
    got_nodes = graph.nodes
    if set(got_nodes) != set(want["nodes"]):
        fail(f"node names differ: {sorted(set(got_nodes) ^ set(want['nodes']))}")
    for name, w in want["nodes"].items():
        node = got_nodes[name]
        if type(node).__name__ != w["type"]:
            fail(f"{name}: type {type(node).__name__} != {w['type']}")
        for key, values in w["integers"].items():
            if key == "shape":
                got = node.input_type["input"] if w["type"] == "Input" else node.output_type["output"]
            elif key == "input_type":
                got = node.input_type["input"]
            else:
                got = getattr(node, key)
            if list(np.atleast_1d(got).astype(np.int64)) != values:
                fail(f"{name}.{key}: {got} != {values}")
        for key, a in w["arrays"].items():
            got = np.asarray(getattr(node, key), dtype=np.float64)
            if list(got.shape) != a["shape"]:
                fail(f"{name}.{key}: shape {got.shape} != {a['shape']}")
            if not close(got.sum(), a["sum"]) or not close(np.abs(got).sum(), a["abs_sum"]):
                fail(f"{name}.{key}: sum {got.sum()} / {np.abs(got).sum()} != {a['sum']} / {a['abs_sum']}")
    got_edges = sorted(tuple(e) for e in graph.edges)
    want_edges = sorted(tuple(e) for e in want["edges"])
    if got_edges != want_edges:
        fail(f"edges differ: {sorted(set(got_edges) ^ set(want_edges))[:10]}")
    slots = [n for n, w in want["nodes"].items() if w["type"] == "I"]
    for s in slots:
        for edge in [(s, f"{s}.spike"), (f"{s}.spike", f"{s}.reset"), (f"{s}.reset", s), (f"{s}.spike", f"{s}.amplitude")]:
            if edge not in got_edges:
                fail(f"soft-reset slot {s}: edge {edge} missing")
        up = np.asarray(got_nodes[f"{s}.amplitude"].scale)
        down = np.asarray(got_nodes[f"{s}.reset"].scale)
        if not np.array_equal(up, -down):
            fail(f"soft-reset slot {s}: reset scale is not -amplitude")
    for key, value in want["metadata"].items():
        got = graph.metadata.get(key)
        if isinstance(got, bytes):
            got = got.decode()
        if got != value:
            fail(f"metadata {key}: {got!r} != {value!r}")
    params = sum(int(np.asarray(getattr(got_nodes[n], k)).size) for n, w in want["nodes"].items() for k in w["arrays"])
    print(
        f"OK: {path} loads in nir {nir.__version__}: {len(got_nodes)} nodes, {len(got_edges)} edges, "
        f"{params} parameters, {len(slots)} soft-reset slots; names, types, edges and parameters match"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
