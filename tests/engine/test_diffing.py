from reconciler.engine.diffing import field_changes, show_value
from reconciler.engine.resource import FieldChange


def test_only_owned_keys_are_compared():
    desired = {"labels": {"managed-by": "saxctl"}}
    observed = {"labels": {"managed-by": "saxctl", "added-by-gke": "x"}, "storageClass": "STANDARD"}
    assert field_changes(desired, observed) == ()


def test_leaf_changes_are_dotted_paths_and_replacement_is_flagged_by_top_level_field():
    desired = {"location": "EU", "labels": {"team": "b", "new": "1"}}
    observed = {"location": "US", "labels": {"team": "a"}}
    assert field_changes(desired, observed, frozenset({"location"})) == (
        FieldChange("labels.new", None, "1", False),
        FieldChange("labels.team", "a", "b", False),
        FieldChange("location", "US", "EU", True),
    )


def test_lists_compare_whole():
    assert field_changes({"roles": ["a", "b"]}, {"roles": ["b", "a"]}) == (
        FieldChange("roles", ["b", "a"], ["a", "b"], False),
    )


def test_values_print_as_json_and_absence_as_none():
    assert [show_value(v) for v in (None, True, "US", {"b": 1, "a": 2})] == ["(none)", "true", '"US"', '{"a": 2, "b": 1}']
