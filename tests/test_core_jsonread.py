"""JsonReader names the JSON path of whatever is wrong, spelled out only when asked for."""

from __future__ import annotations

import pytest

from monitor.core.errors import MalformedInputError
from monitor.core.jsonread import JsonReader

DOC = {"spec": {"signatures": [{"verifier": 1}, {"[0]": {"x": None}}], "": {"k": 2}}}


def test_paths_of_keys_and_indexes() -> None:
    spec = JsonReader(DOC, "body").get("spec")
    first, second = spec.get("signatures").items()
    assert first.get("verifier").path == "body.spec.signatures[0].verifier"
    assert second.get("[0]").path == "body.spec.signatures[1].[0]"  # a key, never an index
    assert spec.get("").get("k").path == "body.spec..k"
    assert JsonReader(DOC, "").get("spec").path == "spec"
    assert JsonReader([[1]], "").items()[0].items()[0].path == "[0][0]"


def test_errors_name_the_path() -> None:
    sigs = JsonReader(DOC, "body").get("spec").get("signatures")
    with pytest.raises(MalformedInputError, match=r"^body\.spec\.signatures\[0\]\.verifier: "
                       "expected a string, got int$"):  # fmt: skip
        sigs.items()[0].get("verifier").str()
    with pytest.raises(MalformedInputError, match=r"^body\.spec\.signatures\[1\]\.nope: missing$"):
        sigs.items()[1].get("nope")
    with pytest.raises(MalformedInputError, match=r"^body\.spec\.signatures: expected an object"):
        sigs.get("x")
    assert sigs.items()[1].get("[0]").opt("x") is None
    with pytest.raises(MalformedInputError, match=r"^\(top\): expected a list, got an object$"):
        JsonReader(DOC, "").items()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([1], "a list"),
        ("x", "a string"),
        (1, "int"),
        (1.5, "float"),
        (None, "null"),
        (True, "bool"),
    ],
)
def test_get_on_anything_but_an_object_says_what_it_got(value: object, kind: str) -> None:
    with pytest.raises(MalformedInputError, match=rf"^body\.v: expected an object, got {kind}$"):
        JsonReader({"v": value}, "body").get("v").get("key")


def test_get_of_a_key_holding_null_or_false_is_present() -> None:
    doc = JsonReader({"a": None, "b": False, "c": 0}, "body")
    assert [doc.get(k).value for k in "abc"] == [None, False, 0]
    with pytest.raises(MalformedInputError, match=r"^body\.d: missing$"):
        doc.get("d")
