"""The plan as a pull-request comment: counts first, the marker a workflow finds, warnings before details, the cut."""

from reconciler.cost import prices
from reconciler.cost.estimate import estimate
from reconciler.engine.address import Address
from reconciler.engine.plan import Plan, SpecRef
from reconciler.engine.resource import Action, Change, FieldChange, Observed, Resource
from reconciler.render.plan_markdown import GITHUB_COMMENT_LIMIT, plan_markdown


def model(index: int) -> Change:
    resource = Resource(Address("sax.model", f"model-{index:04d}"), "sax.model", f"model-{index:04d}",
                        {"modelPath": "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32", "replicas": 1})
    return Change(resource.address, resource.kind, Action.CREATE,
                  f"/sax/test/model-{index:04d} is not published: publish it with 1 replica", desired=resource,
                  field_changes=(FieldChange("replicas", None, 1), FieldChange("modelPath", None, "x" * 40)))


def pool_replaced() -> Change:
    fields = {"machineType": "ct5lp-hightpu-4t", "tpuTopology": "2x2", "zone": "us-central1-a", "nodeCount": 1}
    desired = Resource(Address("gke.node_pool", "tpu"), "gke.node_pool", "tpu", {**fields, "nodeCount": 2})
    live = Observed(desired.address, "tpu", fields, "etag 1", "demo")
    return Change(desired.address, desired.kind, Action.REPLACE, "zone us-central1-b → us-central1-a cannot change",
                  (FieldChange("zone", "us-central1-b", "us-central1-a", True),), desired, live)


def plan_of(*changes: Change) -> Plan:
    return Plan("apply", SpecRef("gptj-demo", "demo.yaml", "0" * 64), tuple(changes))


def test_the_first_line_counts_and_the_marker_names_the_spec():
    text = plan_markdown(plan_of(model(1), pool_replaced()))
    lines = text.splitlines()
    assert lines[0] == "Plan: 1 to add, 0 to change, 1 to replace, 0 to destroy"
    assert "<!-- saxctl-plan: gptj-demo -->" in lines[:4]


def test_warnings_and_cost_come_before_the_details():
    the_plan = plan_of(model(1), pool_replaced())
    text = plan_markdown(the_plan, estimate(the_plan, prices.list_prices()))
    replacing = text.index("replacing a TPU slice stops what runs on it")
    chips = text.index("TPU v5e chips: +4 (4 → 8)")
    cost = text.index("**Cost:** +$3,504.00 per month (list prices of 2026-12-07, on-demand, us-central1)")
    table = text.index("| | address | action | why |")
    assert replacing < table and chips < table and cost < table
    assert "(unconfirmed)" in text, "a price not read from its page says so"


def test_a_thousand_models_fit_in_one_comment_cut_in_the_middle_with_a_note():
    the_plan = plan_of(*(model(index) for index in range(1000)))
    text = plan_markdown(the_plan, full_plan="the artifact saxctl-plan.json")
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.startswith("Plan: 1000 to add, 0 to change, 0 to replace, 0 to destroy")
    assert "`sax.model.model-0000`" in text and "`sax.model.model-0999`" in text, "both ends of the table are kept"
    note = next(line for line in text.splitlines() if "cut here" in line)
    assert "the whole plan is in the artifact saxctl-plan.json" in note
    assert "`sax.model.model-0500`" not in text, "the middle is what is cut"
    assert "<details>" not in text, "the field details go first"


def test_a_plan_that_fits_is_not_cut():
    text = plan_markdown(plan_of(*(model(index) for index in range(20))))
    assert "cut here" not in text and text.count("sax.model.model-") == 40  # a table row and a details block each


def test_a_plan_whose_table_fits_keeps_it_whole_and_cuts_field_details():
    text = plan_markdown(plan_of(*(model(index) for index in range(300))), limit=40_000)
    assert len(text) <= 40_000
    assert all(f"`sax.model.model-{index:04d}`" in text for index in range(300)), "every row of the table"
    assert text.count("<details>") == text.count("</details>") > 0, "details kept whole, in order"
    assert "field details of" in next(line for line in text.splitlines() if "cut here" in line)
