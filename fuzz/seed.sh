#!/usr/bin/env bash
# Seeds for the fuzz targets: each flows/*.json as a request body followed by a PATCH body
# (callflow_json), and the FreeSWITCH side of each capture in /work/shared/spec/traces/raw minus
# its connect reply (esl_frames: the harness sends its own connect reply).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p fuzz/seeds/callflow_json fuzz/seeds/esl_frames fuzz/corpus/callflow_json fuzz/corpus/esl_frames
python3 - <<'PY'
import glob, json, os
for i, path in enumerate(sorted(glob.glob("flows/*.json")), 1):
    doc = json.dumps({"data": json.load(open(path))}).encode()
    patch = json.dumps({"data": {"name": "patched", "numbers": [f"9{i}"],
                                 "flow": {"data": {"id": "x"}}}}).encode()
    open(f"fuzz/seeds/callflow_json/flow{i}", "wb").write(doc + b"\0" + patch)

def first_frame_len(b):
    i = b.find(b"\n\n")
    if i < 0:
        return len(b)
    end, n = i + 2, 0
    for line in b[:end].decode("latin1").splitlines():
        if line.startswith("Content-Length:"):
            try:
                n = int(line.split(":", 1)[1].strip())
            except ValueError:
                n = 0
    return end + n if n <= len(b) - end else end

for path in sorted(glob.glob("/work/shared/spec/traces/raw/*.fs_to_ctl.raw")):
    b = open(path, "rb").read()
    name = os.path.basename(path).split(".")[0]
    open(f"fuzz/seeds/esl_frames/{name}", "wb").write(b[first_frame_len(b):])
PY
ls fuzz/seeds/*
