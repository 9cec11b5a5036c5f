"""Triton's own Python HTTP client against `keel serve`, unchanged.

Run by host/cli/tests/all/serve.rs (`tritonclient_gets_the_right_answers`) with
the python of the virtualenv `cargo xtask test` makes (target/venvs/tritonclient,
from requirements.txt next to this file; its path is in KEEL_TRITON_PYTHON):

    python client.py --url 127.0.0.1:PORT --model penguins \
        --input examples/penguins/current.csv --expected EXPECTED.jsonl \
        [--token T] [--binary both|json|binary] [--version V]
    python client.py --offline --input CSV --expected EXPECTED.jsonl

Against the server it checks liveness, readiness, model readiness and model
metadata (inputs include the CSV's columns, outputs include `prob_gentoo` and
`is_gentoo`), then sends exactly the model's inputs built from the CSV:

  (a) all rows in one request, JSON data in and out, tensors of shape [N];
  (b) all rows in one request, binary data in and out (tritonclient's
      defaults: Triton's binary tensor extension), tensors of shape [N, 1];
  (c) one request per row for the first 10 rows, with a request id
      `tc-<n>-<random>` that the answer must echo, and no outputs named, so
      tritonclient asks for every output in binary (`binary_data_output`);
      inputs binary on even rows, JSON on odd rows with `--binary both`.

`--binary json` leaves out (b), `--binary binary` leaves out (a) ((c) runs in
every mode, with that mode's input encoding). Every answer is compared with
`--expected`, JSON Lines written by `keel run` on the same rows in the same
order: `prob_gentoo` to 1e-9, `is_gentoo` exactly. Last, a BYTES tensor for
the FP64 input `bill_length_mm` must be refused with a 400 naming the tensor.

`--offline` needs no server: it takes the inputs from the CSV header, builds
the same request bodies with tritonclient and decodes them again (JSON header,
Inference-Header-Content-Length, binary sections, length-prefixed BYTES) to
check that they carry the CSV's values.

Tested with tritonclient 2.40.0 + numpy 1.24.4 (the lower bounds in
requirements.txt) and tritonclient 2.73.0 + numpy 2.4.6, Python 3.11.

Rows with a missing value ("" or "NA") in any column are skipped: missing
values are tested by the Rust tests, here we compare numbers (and numpy has
no missing value for BYTES or INT64 anyway).

stdout gets exactly one line, at the end:
    {"ok": true, "rows": N, "requests": K, "ids": [...the ids of (c)...]}
(N = rows compared, K = inference requests answered; the refused one is not
counted). Progress, the metadata and the expected error go to stderr. Any
failure: a message on stderr and exit status 1.
"""

import argparse
import csv
import json
import secrets
import struct
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

# The CSV's columns and their Open Inference Protocol datatypes.
DATATYPES = {
    "bill_length_mm": "FP64",
    "bill_depth_mm": "FP64",
    "flipper_length_mm": "FP64",
    "body_mass_g": "FP64",
    "year": "INT64",
    "species": "BYTES",
    "island": "BYTES",
    "sex": "BYTES",
}
OUTPUTS = ("prob_gentoo", "is_gentoo")
PER_ROW = 10
MISSING = ("", "NA")


class Failed(Exception):
    pass


def fail(msg):
    raise Failed(msg)


def log(*args):
    print(*args, file=sys.stderr)


def read_rows(path):
    """The CSV's header and its complete rows (dicts of strings)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    complete = [r for r in rows if all(r.get(c) not in MISSING and r.get(c) is not None for c in header)]
    log(f"{path}: {len(rows)} rows, {len(rows) - len(complete)} with a missing value skipped")
    return header, complete


def read_expected(path):
    with open(path) as f:
        expected = [json.loads(line) for line in f if line.strip()]
    for i, e in enumerate(expected):
        if not isinstance(e.get("prob_gentoo"), float) or not isinstance(e.get("is_gentoo"), bool):
            fail(f"{path}: line {i + 1} has no float prob_gentoo and bool is_gentoo: {e}")
    return expected


def column(name, values):
    """A column of CSV strings as (numpy array, datatype)."""
    dt = DATATYPES[name]
    if dt == "FP64":
        return np.array([float(v) for v in values], dtype=np.float64), dt
    if dt == "INT64":
        return np.array([int(v) for v in values], dtype=np.int64), dt
    # BYTES: an object array of bytes, serialised by tritonclient as 4-byte
    # little-endian lengths + UTF-8 bytes (binary) or as JSON strings.
    return np.array([v.encode("utf-8") for v in values], dtype=np.object_), dt


def make_inputs(names, rows, binary, two_d):
    inputs = []
    for name in names:
        arr, dt = column(name, [r[name] for r in rows])
        if two_d:
            arr = arr.reshape((-1, 1))
        t = httpclient.InferInput(name, list(arr.shape), dt)
        t.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(t)
    return inputs


def requested(binary):
    return [httpclient.InferRequestedOutput(n, binary_data=binary) for n in OUTPUTS]


def check_encoding(result, names, binary, what):
    """The answer's outputs came as asked: binary sections or JSON data."""
    for name in names:
        out = result.get_output(name)
        if out is None:
            fail(f"{what}: no output {name} in {result.get_response()}")
        has_binary = "binary_data_size" in (out.get("parameters") or {})
        if has_binary != binary or (not binary and "data" not in out):
            fail(f"{what}: output {name} should be {'binary' if binary else 'JSON'}: {out}")


def check_values(result, expected, what, rows):
    probs = result.as_numpy("prob_gentoo")
    labels = result.as_numpy("is_gentoo")
    if probs is None or labels is None:
        fail(f"{what}: outputs missing in {result.get_response()}")
    probs = probs.reshape(-1)
    labels = labels.reshape(-1)
    if len(probs) != len(expected) or len(labels) != len(expected):
        fail(f"{what}: {len(probs)} probabilities and {len(labels)} labels for {len(expected)} rows")
    for i, (p, l, e) in enumerate(zip(probs, labels, expected)):
        if abs(float(p) - e["prob_gentoo"]) > 1e-9 or bool(l) != e["is_gentoo"]:
            fail(
                f"{what}: row {i} {rows[i]}: got prob_gentoo={float(p)!r} is_gentoo={bool(l)}, "
                f"expected prob_gentoo={e['prob_gentoo']!r} is_gentoo={e['is_gentoo']}"
            )


def decode_request(body, json_size):
    """Undo tritonclient's request encoding: (JSON header, {input: flat values})."""
    if json_size is None:
        header, rest = json.loads(body), b""
    else:
        header, rest = json.loads(body[:json_size]), body[json_size:]
    values, offset = {}, 0
    for t in header["inputs"]:
        size = (t.get("parameters") or {}).get("binary_data_size")
        if size is None:
            values[t["name"]] = list(np.array(t["data"], dtype=object).reshape(-1))
            continue
        raw = rest[offset:offset + size]
        offset += size
        if t["datatype"] == "BYTES":
            vals, i = [], 0
            while i < len(raw):
                (n,) = struct.unpack_from("<I", raw, i)
                vals.append(raw[i + 4:i + 4 + n].decode("utf-8"))
                i += 4 + n
        else:
            vals = np.frombuffer(raw, dtype={"FP64": "<f8", "INT64": "<i8"}[t["datatype"]]).tolist()
        values[t["name"]] = vals
    if offset != len(rest):
        fail(f"request body has {len(rest) - offset} bytes after the binary sections")
    return header, values


def offline(args):
    """Build every request the online run sends and check its encoding."""
    header, rows = read_rows(args.input)
    expected = read_expected(args.expected)
    if len(rows) != len(expected):
        fail(f"{len(rows)} complete input rows but {len(expected)} expected rows")
    unknown = [c for c in header if c not in DATATYPES]
    if unknown:
        fail(f"no datatype for CSV columns {unknown}")
    tag = secrets.token_hex(4)
    styles = [
        ("JSON", rows, False, False, requested(False), ""),
        ("binary", rows, True, True, requested(True), ""),
    ] + [
        (f"row {i}", rows[i:i + 1], i % 2 == 0, False, None, f"tc-{i}-{tag}")
        for i in range(min(PER_ROW, len(rows)))
    ]
    for what, part, binary, two_d, outputs, rid in styles:
        body, json_size = httpclient.InferenceServerClient.generate_request_body(
            make_inputs(header, part, binary, two_d), outputs=outputs, request_id=rid
        )
        if (json_size is not None) != binary:
            fail(f"{what}: Inference-Header-Content-Length {json_size} for binary={binary}")
        req, values = decode_request(body, json_size)
        if req.get("id", "") != rid:
            fail(f"{what}: request id {req.get('id')!r}, wanted {rid!r}")
        if outputs is None and (req.get("parameters") or {}).get("binary_data_output") is not True:
            fail(f"{what}: no binary_data_output with outputs=None: {req}")
        for t in req["inputs"]:
            want = [len(part), 1] if two_d else [len(part)]
            if t["shape"] != want or t["datatype"] != DATATYPES[t["name"]]:
                fail(f"{what}: {t['name']} sent as {t['datatype']} {t['shape']}")
            conv = {"FP64": float, "INT64": int, "BYTES": str}[t["datatype"]]
            if values[t["name"]] != [conv(r[t["name"]]) for r in part]:
                fail(f"{what}: {t['name']} carries {values[t['name']]}")
    ids = [rid for *_, rid in styles if rid]
    return {"ok": True, "offline": True, "rows": len(rows), "requests": len(styles), "ids": ids}


def online(args):
    auth = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    def h():
        # A fresh dict per call: tritonclient writes Inference-Header-Content-Length
        # into the headers dict it is given, which would leak into the next request.
        return dict(auth) or None

    client = httpclient.InferenceServerClient(url=args.url)
    try:
        if not client.is_server_live(headers=h()):
            fail("server not live")
        if not client.is_server_ready(headers=h()):
            fail("server not ready")
        if not client.is_model_ready(args.model, args.version, headers=h()):
            fail(f"model {args.model} not ready (or the token was refused: is_model_ready is False on any non-200)")
        meta = client.get_model_metadata(args.model, args.version, headers=h())
        log("metadata:", json.dumps(meta))

        header, rows = read_rows(args.input)
        expected = read_expected(args.expected)
        if len(rows) != len(expected):
            fail(f"{len(rows)} complete input rows but {len(expected)} expected rows")
        # Send exactly the model's inputs, with the datatypes it declares.
        inputs = {t["name"]: t["datatype"] for t in meta["inputs"]}
        names = list(inputs)
        outputs = [t["name"] for t in meta["outputs"]]
        if not set(header) <= set(names):
            fail(f"metadata inputs {names} lack CSV columns {sorted(set(header) - set(names))}")
        if not set(names) <= set(header):
            fail(f"the CSV has no columns for model inputs {sorted(set(names) - set(header))}")
        if not set(OUTPUTS) <= set(outputs):
            fail(f"metadata outputs {outputs} lack {OUTPUTS}")
        for name, dt in inputs.items():
            if DATATYPES.get(name) != dt:
                fail(f"metadata declares input {name} as {dt}, expected {DATATYPES.get(name)}")

        requests = 0
        if args.binary in ("both", "json"):
            # (a) JSON in, JSON out, shapes [N].
            r = client.infer(args.model, make_inputs(names, rows, False, False), model_version=args.version,
                             outputs=requested(False), headers=h())
            check_encoding(r, OUTPUTS, False, "JSON request")
            check_values(r, expected, "JSON request", rows)
            requests += 1
            log(f"JSON request: {len(rows)} rows ok")
        if args.binary in ("both", "binary"):
            # (b) binary in and out (tritonclient's defaults), shapes [N, 1].
            r = client.infer(args.model, make_inputs(names, rows, True, True), model_version=args.version,
                             outputs=requested(True), headers=h())
            check_encoding(r, OUTPUTS, True, "binary request")
            check_values(r, expected, "binary request", rows)
            requests += 1
            log(f"binary request: {len(rows)} rows ok")
        # (c) one row per request with an id; outputs=None: every output binary.
        ids = []
        tag = secrets.token_hex(4)
        for i in range(min(PER_ROW, len(rows))):
            rid = f"tc-{i}-{tag}"
            binary = {"json": False, "binary": True}.get(args.binary, i % 2 == 0)
            r = client.infer(args.model, make_inputs(names, rows[i:i + 1], binary, False),
                             model_version=args.version, outputs=None, request_id=rid, headers=h())
            got = r.get_response().get("id")
            if got != rid:
                fail(f"answer id {got!r} for request id {rid!r}")
            check_encoding(r, [o["name"] for o in r.get_response()["outputs"]], True, f"row {i}")
            check_values(r, expected[i:i + 1], f"row {i} ({rid})", rows[i:i + 1])
            ids.append(rid)
            requests += 1
        log(f"{len(ids)} one-row requests with ids ok")

        # A wrong datatype: BYTES for the FP64 input bill_length_mm.
        bad = make_inputs(names, rows[:1], False, False)
        wrong = httpclient.InferInput("bill_length_mm", [1], "BYTES")
        wrong.set_data_from_numpy(np.array([b"long"], dtype=np.object_), binary_data=False)
        bad = [wrong if t.name() == "bill_length_mm" else t for t in bad]
        try:
            client.infer(args.model, bad, model_version=args.version, outputs=requested(False), headers=h())
        except InferenceServerException as e:
            if e.status() != "400" or "bill_length_mm" not in str(e):
                fail(f"wrong datatype: wanted a 400 naming bill_length_mm, got {e}")
            log(f"expected error: {e}")
        else:
            fail("a BYTES tensor for the FP64 input bill_length_mm was accepted")

        return {"ok": True, "rows": len(rows), "requests": requests, "ids": ids}
    finally:
        client.close()


def main():
    ap = argparse.ArgumentParser(
        description="Triton's Python HTTP client (tritonclient[http]) against keel serve.",
        epilog="Prints one JSON line on stdout: {\"ok\": true, \"rows\": N, \"requests\": K, \"ids\": [...]}.",
    )
    ap.add_argument("--url", help="host:port of keel serve, no scheme (e.g. 127.0.0.1:8000)")
    ap.add_argument("--model", default="penguins", help="model (pipeline) name (default: penguins)")
    ap.add_argument("--input", required=True, help="CSV of input rows (examples/penguins/current.csv)")
    ap.add_argument("--expected", required=True,
                    help="JSON Lines from `keel run` on the input's complete rows, in order")
    ap.add_argument("--token", help="bearer token sent as `Authorization: Bearer T`")
    ap.add_argument("--binary", choices=("both", "json", "binary"), default="both",
                    help="which whole-batch requests to send: JSON, binary or both (default)")
    ap.add_argument("--version", default="", help="model version (default: the server's choice)")
    ap.add_argument("--offline", action="store_true",
                    help="no server: build and decode the requests only")
    args = ap.parse_args()
    if not args.offline and not args.url:
        ap.error("--url is required (or --offline)")
    try:
        summary = offline(args) if args.offline else online(args)
    except (Failed, InferenceServerException, OSError, ValueError, KeyError) as e:
        print(f"tritonclient check failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
