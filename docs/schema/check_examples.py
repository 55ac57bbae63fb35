#!/usr/bin/env python
"""Validate docs/tests/*.json against manifest.schema.json (optional; needs jsonschema==4.23.0).
valid_* must pass. invalid_* either fail the schema or break a per-quantity rule that only the
Rust parser checks (missing inputs, conventions.inner/task_shape for task-set quantities, f0 files)."""
import glob, json, os, sys
import jsonschema
here = os.path.dirname(os.path.abspath(__file__))
schema = json.load(open(os.path.join(here, "manifest.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
bad = 0
for f in sorted(glob.glob(os.path.join(here, "..", "tests", "valid_*.json"))):
    try:
        jsonschema.Draft202012Validator(schema).validate(json.load(open(f)))
    except jsonschema.ValidationError as e:
        print("FAIL", f, e.message); bad += 1
sys.exit(1 if bad else 0)
