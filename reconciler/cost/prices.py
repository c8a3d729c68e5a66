"""The dated table of list prices saxctl ships, and the user's own prices laid over it (`--prices FILE`).

Infracost's users ask most for their negotiated prices and it has no TPU prices at all: here a file of the same
shape as list_prices.json, any part of it (YAML or JSON), replaces the entries it names and says whose they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from reconciler.errors import SaxctlError

FORMAT = "saxctl/prices"
_SECTIONS = ("tpuChipHour", "machineHour")  # name → price maps; clusterHour is one price


@dataclass(frozen=True, slots=True)
class Price:
    usd: float  # per hour
    source: str  # where it was read, or the user's file
    confirmed: bool  # False: could not be read from its source on the table's date


@dataclass(frozen=True, slots=True)
class PriceTable:
    date: str
    basis: str  # "on-demand", or what the user's file says ("negotiated")
    region: str
    hours_per_month: float
    tpu_chip_hour: Mapping[str, Price]  # TPU generation (v5e, v6e, v5p, v4) → price of one chip-hour
    machine_hour: Mapping[str, Price]  # Compute Engine machine type → price of one VM-hour
    cluster_hour: Price | None  # GKE's management fee per cluster

    @property
    def described(self) -> str:
        """What the figures are, as a reader must know: "list prices of 2026-12-07, on-demand, us-central1"."""
        return f"list prices of {self.date}, {self.basis}, {self.region}"


class PricesError(SaxctlError):
    """A --prices file that cannot be read as prices: the message names the file and the entry."""


def list_prices() -> PriceTable:
    """The table saxctl ships (reconciler/cost/list_prices.json)."""
    text = resources.files("reconciler.cost").joinpath("list_prices.json").read_text()
    return _table(json.loads(text), "list_prices.json")


def with_user_prices(table: PriceTable, path: Path) -> PriceTable:
    """table with every entry of the user's file in place of its own; the file may hold any part of the shape."""
    from ruamel.yaml import YAML, YAMLError

    try:
        document = YAML(typ="safe").load(path.read_text())
    except OSError as error:
        raise PricesError(f"--prices {path}: cannot read it: {error.strerror or error}") from None
    except YAMLError as error:
        raise PricesError(f"--prices {path}: not YAML or JSON: {error}") from None
    if not isinstance(document, dict):
        raise PricesError(f"--prices {path}: expected a mapping of the shape of saxctl's list_prices.json")
    where = str(path)
    merged = {
        "date": document.get("date", table.date),
        "basis": document.get("basis", "your prices"),
        "region": document.get("region", table.region),
        "hoursPerMonth": document.get("hoursPerMonth", table.hours_per_month),
        "tpuChipHour": {**_as_json(table.tpu_chip_hour), **_section(document, "tpuChipHour", where)},
        "machineHour": {**_as_json(table.machine_hour), **_section(document, "machineHour", where)},
        "clusterHour": _user_price(document["clusterHour"], "clusterHour", where) if "clusterHour" in document
        else _price_json(table.cluster_hour),
    }
    return _table(merged, where)


def _section(document: Mapping[str, Any], name: str, where: str) -> dict[str, dict]:
    entries = document.get(name, {})
    if not isinstance(entries, dict):
        raise PricesError(f"--prices {where}: {name}: expected a mapping of names to prices")
    return {key: _user_price(value, f"{name}.{key}", where) for key, value in entries.items()}


def _user_price(value: Any, field: str, where: str) -> dict:
    """A user's price: a bare number of USD per hour, or {usd, source}; theirs, so confirmed."""
    usd = value.get("usd") if isinstance(value, dict) else value
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or usd < 0:
        raise PricesError(f"--prices {where}: {field}: expected USD per hour as a number ≥ 0, got {usd!r}")
    source = value.get("source", where) if isinstance(value, dict) else where
    return {"usd": float(usd), "source": str(source), "confirmed": True}


def _as_json(prices: Mapping[str, Price]) -> dict[str, dict]:
    return {name: _price_json(price) for name, price in prices.items()}


def _price_json(price: Price | None) -> dict | None:
    return None if price is None else {"usd": price.usd, "source": price.source, "confirmed": price.confirmed}


def _table(document: Mapping[str, Any], where: str) -> PriceTable:
    hours = document.get("hoursPerMonth")
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 745:
        raise PricesError(f"{where}: hoursPerMonth: expected hours in a month (730 is Google's), got {hours!r}")
    cluster = document.get("clusterHour")
    return PriceTable(
        date=str(document["date"]), basis=str(document["basis"]), region=str(document["region"]),
        hours_per_month=float(hours),
        tpu_chip_hour={k: Price(**v) for k, v in document["tpuChipHour"].items()},
        machine_hour={k: Price(**v) for k, v in document["machineHour"].items()},
        cluster_hour=Price(**cluster) if cluster else None,
    )
