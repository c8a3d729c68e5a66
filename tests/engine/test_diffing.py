from reconciler.engine.diffing import field_changes, show_value
from reconciler.engine.resource import FieldChange


def test_only_owned_keys_are_compared():
    desired = {"labels": {"managed-by": "saxctl"}}
    observed = {"labels": {"managed-by": "saxctl", "added-by-gke": "x"}, "storageClass": "STANDARD"}
    assert field_changes(desired, observed) == ()


def test_leaf_changes_are_dotted_paths_and_replacement_is_flagged_by_field_path():
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


def test_replacement_is_forced_by_a_nested_path_and_what_is_below_it():
    desired = {"config": {"machineType": "ct5lp-hightpu-8t", "labels": {"a": "2"}}}
    observed = {"config": {"machineType": "ct5lp-hightpu-4t", "labels": {"a": "1"}}}
    assert field_changes(desired, observed, frozenset({"config.machineType"})) == (
        FieldChange("config.labels.a", "1", "2", False),
        FieldChange("config.machineType", "ct5lp-hightpu-4t", "ct5lp-hightpu-8t", True),
    )


def test_a_set_like_list_ignores_order_but_not_members():
    keys = {"members": ""}
    assert field_changes({"members": ["a", "b"]}, {"members": ["b", "a"]}, list_keys=keys) == ()
    assert field_changes({"members": ["a"]}, {"members": ["b", "a"]}, list_keys=keys) == (
        FieldChange("members", ["b", "a"], ["a"], False),)


def test_a_keyed_list_is_compared_item_by_item_whatever_the_order():
    keys = {"containers": "name", "containers[].env": "name"}
    desired = {"containers": [{"name": "b", "image": "v2"}, {"name": "a", "env": [{"name": "X", "value": "1"}]}]}
    observed = {"containers": [{"name": "a", "env": [{"name": "X", "value": "0"}, {"name": "Y", "value": "y"}]},
                               {"name": "b", "image": "v1"}, {"name": "c", "image": "v1"}]}
    assert field_changes(desired, observed, frozenset({"containers[].image"}), keys) == (
        FieldChange("containers[name=b].image", "v1", "v2", True),
        FieldChange("containers[name=a].env[name=X].value", "0", "1", False),
        FieldChange("containers[name=a].env[name=Y]", {"name": "Y", "value": "y"}, None, False),
        FieldChange("containers[name=c]", {"name": "c", "image": "v1"}, None, False),
    )


def test_an_unknown_value_is_always_a_change_and_prints_as_known_after_apply():
    from reconciler.engine.resource import UNKNOWN

    assert field_changes({"endpoint": UNKNOWN}, {"endpoint": "10.0.0.1"}) == (
        FieldChange("endpoint", "10.0.0.1", UNKNOWN, False),)
    assert show_value(UNKNOWN) == "(known after apply)"
