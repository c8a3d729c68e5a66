"""The monthly cost of a plan against figures computed by hand from the price table, and the user's own prices."""

import json
from importlib import resources

import pytest

from reconciler.cost import prices as price_table
from reconciler.cost.estimate import estimate
from reconciler.engine.address import Address
from reconciler.engine.plan import Plan, SpecRef
from reconciler.engine.resource import Action, Change, Observed, Resource
from reconciler.errors import SaxctlError

HOURS = 730  # list_prices.json's hoursPerMonth, Google's own
V5E_CHIP_HOUR = 1.2
E2_STANDARD_4_HOUR = 0.134012
CLUSTER_HOUR = 0.1


def cluster(count=2, machine="e2-standard-4", location="us-central1-a"):
    fields = {"location": location, "cpuNodes": {"machineType": machine, "nodeCount": count}}
    return Resource(Address("gke.cluster", "saxml"), "gke.cluster", "saxml", fields)


def pool(name="tpu", machine="ct5lp-hightpu-4t", nodes=1):
    fields = {"machineType": machine, "tpuTopology": "2x2", "zone": "us-central1-a", "nodeCount": nodes}
    return Resource(Address("gke.node_pool", name), "gke.node_pool", name, fields)


def live(resource):
    return Observed(resource.address, resource.name, resource.fields, "etag 1", "demo")


def plan_of(*changes):
    return Plan("apply", SpecRef("demo", "demo.yaml", "0" * 64), tuple(changes))


def create(resource):
    return Change(resource.address, resource.kind, Action.CREATE, "does not exist", desired=resource)


def update(before, after):
    return Change(after.address, after.kind, Action.UPDATE, "changed", desired=after, observed=live(before))


def delete(resource):
    return Change(resource.address, resource.kind, Action.DELETE, "gone", desired=resource, observed=live(resource))


def test_a_2x2_v5e_slice_added_costs_its_four_chips():
    cost = estimate(plan_of(create(pool())), price_table.list_prices())
    assert [(line.what, line.before, line.after) for line in cost.lines] == [("TPU v5e chips", 0, 4)]
    assert cost.monthly_delta == pytest.approx(4 * V5E_CHIP_HOUR * HOURS)  # $3,504.00


def test_cpu_nodes_two_to_three_cost_one_node_more():
    cost = estimate(plan_of(update(cluster(2), cluster(3))), price_table.list_prices())
    assert [(line.what, line.before, line.after) for line in cost.lines] == [("e2-standard-4 nodes", 2, 3)]
    assert cost.monthly_delta == pytest.approx(E2_STANDARD_4_HOUR * HOURS)  # $97.83


def test_a_regional_cluster_runs_its_cpu_count_in_three_zones():
    cost = estimate(plan_of(create(cluster(2, location="us-central1"))), price_table.list_prices())
    assert dict((line.what, line.after) for line in cost.lines) == {"GKE cluster fee": 1, "e2-standard-4 nodes": 6}


def test_the_cluster_removed_saves_its_fee_nodes_and_slices():
    cost = estimate(plan_of(delete(pool()), delete(cluster())), price_table.list_prices())
    expected = -(CLUSTER_HOUR + 2 * E2_STANDARD_4_HOUR + 4 * V5E_CHIP_HOUR) * HOURS  # −$3,772.66
    assert cost.monthly_delta == pytest.approx(expected)
    assert {line.what for line in cost.lines} == {"GKE cluster fee", "e2-standard-4 nodes", "TPU v5e chips"}


def test_a_renamed_slice_costs_nothing_more():
    cost = estimate(plan_of(delete(pool("old")), create(pool("new"))), price_table.list_prices())
    assert cost.lines == () and cost.monthly_delta == 0


def test_a_machine_type_not_in_the_table_is_said_and_left_out_of_the_total():
    cost = estimate(plan_of(create(cluster(1, machine="n2-standard-64"))), price_table.list_prices())
    assert [line.what for line in cost.unpriced] == ["n2-standard-64 nodes"]
    assert cost.monthly_delta == pytest.approx(CLUSTER_HOUR * HOURS)


def test_your_prices_replace_the_ones_they_name(tmp_path):
    mine = tmp_path / "prices.yaml"
    mine.write_text("basis: negotiated\ntpuChipHour:\n  v5e: 0.84\n")
    table = price_table.with_user_prices(price_table.list_prices(), mine)
    cost = estimate(plan_of(create(pool()), update(cluster(2), cluster(3))), table)
    assert cost.monthly_delta == pytest.approx((4 * 0.84 + E2_STANDARD_4_HOUR) * HOURS)
    assert table.described == "list prices of 2026-12-07, negotiated, us-central1"
    assert table.tpu_chip_hour["v5e"].source == str(mine) and table.tpu_chip_hour["v5e"].confirmed
    assert not table.machine_hour["e2-standard-4"].confirmed, "the prices it does not name stay the list's"


@pytest.mark.parametrize("content, message", [
    ("tpuChipHour:\n  v5e: cheap\n", "tpuChipHour.v5e: expected USD per hour as a number ≥ 0, got 'cheap'"),
    ("tpuChipHour: [1, 2]\n", "tpuChipHour: expected a mapping of names to prices"),
    ("- 1\n", "expected a mapping of the shape of saxctl's list_prices.json"),
    ("hoursPerMonth: 0\n", "hoursPerMonth: expected hours in a month (730 is Google's), got 0"),
])
def test_a_bad_prices_file_names_the_file_and_entry(tmp_path, content, message):
    bad = tmp_path / "prices.yaml"
    bad.write_text(content)
    with pytest.raises(SaxctlError) as raised:
        price_table.with_user_prices(price_table.list_prices(), bad)
    assert str(bad) in raised.value.message and message in raised.value.message


def test_every_list_price_names_its_source_and_whether_it_was_read_there():
    document = json.loads(resources.files("reconciler.cost").joinpath("list_prices.json").read_text())
    entries = [*document["tpuChipHour"].values(), *document["machineHour"].values(), document["clusterHour"]]
    assert all(entry["source"].startswith("https://cloud.google.com/") for entry in entries)
    assert all(isinstance(entry["confirmed"], bool) for entry in entries)
    assert document["date"] and document["basis"] == "on-demand" and document["region"] == "us-central1"
