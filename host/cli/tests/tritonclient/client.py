"""Triton's own Python HTTP client against `keel serve`, unchanged.

Run by host/cli/tests/serve.rs (`tritonclient_gets_the_right_answers`) with
the virtualenv `cargo xtask test` makes (target/venvs/tritonclient):

    python client.py --url 127.0.0.1:PORT --model penguins \
        --input examples/penguins/current.csv --expected expected.jsonl [--token T]

It checks health, readiness and model metadata; sends the input rows as one
JSON request, as one binary request (tritonclient's defaults), and as one
request per row with a request id and binary outputs; compares every answer
with `expected` (JSON Lines written by `keel run` on the same rows); checks a
wrong datatype gets a 400 naming the tensor. Rows with a missing value are
skipped: the client converts through numpy, where a missing string has no
representation (missing values are tested by the Rust tests). Prints one
JSON line {"ok": true, "rows": N, "requests": K, "ids": [...]}.
"""

import argparse
import csv
import json
import random
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

FLOATS = {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"}
INTS = {"year"}


def fail(msg):
    print(f"tritonclient check failed: {msg}", file=sys.stderr)
    sys.exit(1)


def column_array(name, values):
    if name in FLOATS:
        return np.array([float(v) for v in values], dtype=np.float64), "FP64"
    if name in INTS:
        return np.array([int(v) for v in values], dtype=np.int64), "INT64"
    return np.array([v.encode() for v in values], dtype=np.object_), "BYTES"


def make_inputs(names, rows, binary, two_d):
    inputs = []
    for name in names:
        arr, dt = column_array(name, [r[name] for r in rows])
        if two_d:
            arr = arr.reshape((-1, 1))
        t = httpclient.InferInput(name, list(arr.shape), dt)
        t.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(t)
    return inputs


def check(result, expected, what):
    probs = result.as_numpy("prob_gentoo")
    labels = result.as_numpy("is_gentoo")
    if probs is None or labels is None:
        fail(f"{what}: outputs missing in {result.get_response()}")
    probs = probs.reshape(-1)
    labels = labels.reshape(-1)
    if len(probs) != len(expected):
        fail(f"{what}: {len(probs)} answers for {len(expected)} rows")
    for i, (p, l, e) in enumerate(zip(probs, labels, expected)):
        if abs(float(p) - e["prob_gentoo"]) > 1e-9 or bool(l) != e["is_gentoo"]:
            fail(f"{what}: row {i}: got ({p}, {l}), expected ({e['prob_gentoo']}, {e['is_gentoo']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="host:port of keel serve")
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help="CSV of input rows")
    ap.add_argument("--expected", required=True, help="JSON Lines from keel run")
    ap.add_argument("--token")
    ap.add_argument("--version", default="")
    args = ap.parse_args()

    auth = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    def h():
        # A fresh dict per call: tritonclient writes Inference-Header-Content-Length
        # into the headers it is given, which would leak into the next request.
        return dict(auth) or None

    client = httpclient.InferenceServerClient(url=args.url)
    if not client.is_server_live(headers=h()):
        fail("server not live")
    if not client.is_server_ready(headers=h()):
        fail("server not ready")
    if not client.is_model_ready(args.model, args.version, headers=h()):
        fail("model not ready")
    meta = client.get_model_metadata(args.model, args.version, headers=h())
    print("metadata:", json.dumps(meta), file=sys.stderr)
    names = [t["name"] for t in meta["inputs"]]
    outputs = {t["name"] for t in meta["outputs"]}
    if not {"prob_gentoo", "is_gentoo"} <= outputs:
        fail(f"metadata outputs {sorted(outputs)}")
    if not FLOATS <= set(names):
        fail(f"metadata inputs {names}")

    with open(args.input, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r[n] not in ("", "NA") for n in names)]
    with open(args.expected) as f:
        expected = [json.loads(line) for line in f if line.strip()]
    if len(rows) != len(expected):
        fail(f"{len(rows)} complete input rows but {len(expected)} expected rows")

    requests = 0
    wanted = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("prob_gentoo", "is_gentoo")]
    # (a) JSON in, JSON out, shapes [N].
    r = client.infer(args.model, make_inputs(names, rows, False, False), model_version=args.version,
                     outputs=wanted, headers=h())
    check(r, expected, "JSON request")
    requests += 1
    # (b) binary in and out (tritonclient's defaults), shapes [N, 1].
    binary_out = [httpclient.InferRequestedOutput(n) for n in ("prob_gentoo", "is_gentoo")]
    r = client.infer(args.model, make_inputs(names, rows, True, True), model_version=args.version,
                     outputs=binary_out, headers=h())
    check(r, expected, "binary request")
    requests += 1
    # (c) one row per request, with ids; no outputs named: all come back binary.
    ids = []
    tag = random.randrange(1 << 30)
    for i in range(min(10, len(rows))):
        rid = f"tc-{i}-{tag}"
        r = client.infer(args.model, make_inputs(names, rows[i:i + 1], True, False),
                         model_version=args.version, request_id=rid, headers=h())
        if r.get_response().get("id") != rid:
            fail(f"answer id {r.get_response().get('id')} for request {rid}")
        check(r, expected[i:i + 1], f"row {i}")
        ids.append(rid)
        requests += 1
    # A wrong datatype is a 400 naming the tensor.
    bad = make_inputs(names, rows[:1], False, False)
    for t in bad:
        if t.name() == "bill_length_mm":
            idx = bad.index(t)
            nt = httpclient.InferInput("bill_length_mm", [1], "BYTES")
            nt.set_data_from_numpy(np.array([b"long"], dtype=np.object_), binary_data=False)
            bad[idx] = nt
    try:
        client.infer(args.model, bad, model_version=args.version, headers=h())
        fail("a BYTES tensor for a numeric input was accepted")
    except InferenceServerException as e:
        if "bill_length_mm" not in str(e):
            fail(f"error does not name the tensor: {e}")
        print(f"expected error: {e}", file=sys.stderr)

    print(json.dumps({"ok": True, "rows": len(rows), "requests": requests, "ids": ids}))


if __name__ == "__main__":
    main()
