#!/bin/sh
# Stand-in retraining job, run by the performance monitor's alert command with
# the alert's JSON on stdin: it keeps the alert next to the new model and
# trains a candidate on the recent labelled applications. A real job would
# pull the labelled rows from its warehouse; what matters here is that the
# alert starts it and that its output is a new model version to try.
#
# Usage: retrain.sh OUT_DIR   (PYTHON: an interpreter with scikit-learn and
# skl2onnx; default python3)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: retrain.sh OUT_DIR}
mkdir -p "$out"
cat > "$out/alert.json"
"${PYTHON:-python3}" "$here/train.py" "$here/recent.csv" "$out/loan-model-2.onnx"
