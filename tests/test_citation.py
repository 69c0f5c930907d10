"""CITATION.cff is valid CFF 1.2.0 (schema from citation-file-format, CC-BY-4.0, in tests/data)."""

import json

import jsonschema
import yaml

from tests.workflow_helpers import ROOT


def test_citation_cff_validates_against_cff_1_2_0():
    schema = json.loads((ROOT / "tests/data/cff-schema-1.2.0.json").read_text())
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)
    assert data["cff-version"] == "1.2.0"
