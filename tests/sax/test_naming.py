"""Sax's names and their refusals in Sax's own words (pure: saxml common/naming.go, admin/validator.go)."""

from __future__ import annotations

import pytest

from reconciler.sandbox.sax.naming import ModelName, SaxError, cell_name, model_name, model_name_in_cell

SUFFIX = ": rpc error: code = InvalidArgument desc = InvalidArgument"


def test_a_model_id_splits_into_cell_and_name():
    assert model_name("/sax/test/gpt-j_2") == ModelName("test", "gpt-j_2")
    assert ModelName("test", "m").go == "{test m}"


@pytest.mark.parametrize("model_id, text", [
    ("gptj", 'model full name "gptj" should have the form /sax/<cell name>/<model name>'),
    ("/sax/test/GPTJ", 'model name "GPTJ" must match "^[a-z]+[a-z0-9-_]*$"'),
    ("/sax/test/9lives", 'model name "9lives" must match "^[a-z]+[a-z0-9-_]*$"'),
    ("/sax/test/m\n", 'model name "m\\n" must match "^[a-z]+[a-z0-9-_]*$"'),
    ("/other/test/m", 'cell full name "/other/test" should have the form /sax/<cell name>'),
    ("/sax/Test/m", 'cell name "Test" must match "^[a-z]+[a-z0-9-_]*$"'),
])
def test_malformed_model_ids_are_refused(model_id, text):
    with pytest.raises(SaxError) as refused:
        model_name(model_id)
    assert (str(refused.value), refused.value.code) == (text + SUFFIX, "INVALID_ARGUMENT")


def test_a_model_outside_the_cell_is_refused():
    with pytest.raises(SaxError, match='^model /sax/b/m must be within SAX cell "/sax/a": rpc error'):
        model_name_in_cell("/sax/b/m", "/sax/a")
    assert cell_name("/sax/a") == "a"
