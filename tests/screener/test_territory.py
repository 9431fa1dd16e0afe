"""Territory codes, the rules for where protection and licences hold, bands per territory
in the policy, and a catalog made before territories existed (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from screener.core import policy as policy_mod
from screener.core import territory
from screener.core.errors import InputError, PolicyError
from screener.store.catalog import Catalog


def test_codes_are_iso_3166_alpha_2() -> None:
    assert territory.code(" cn ") == "CN"
    assert territory.codes(["US", "cn", "US"]) == ("CN", "US")
    assert len(territory.ISO_3166_ALPHA2) == 249
    for bad in ("ZZ", "EU", "USA", "", "C", 7, None):
        with pytest.raises(InputError, match="ISO 3166-1 alpha-2"):
            territory.code(bad)


def test_where_protection_and_licences_hold() -> None:
    assert territory.covers((), "US") and territory.covers((), None)
    assert territory.covers(("CN",), "CN") and not territory.covers(("CN",), "US")
    assert territory.covers(("CN",), None)  # unknown release: everywhere, so protected
    assert territory.grants((), "US") and territory.grants((), None)
    assert territory.grants(("CN",), "CN") and not territory.grants(("CN",), "US")
    assert not territory.grants(("CN",), None)  # an unknown release lifts nothing
    assert territory.of_check(None, "us") == "US"
    assert territory.of_check("CN", "US") == "CN"
    assert territory.of_check(None, None) is None
    with pytest.raises(InputError):
        territory.of_check("XX", None)


def test_the_policy_sets_bands_per_territory() -> None:
    document = policy_mod.load().to_dict()
    document["territory_bands"] = {"CN": {"review": 0.99, "block": 0.9999}}
    document["work_overrides"] = {"hero": {"review": 0.995, "block": 0.9995}}
    policy = policy_mod.parse(document)
    assert policy.bands_for(None, "CN").block == 0.9999
    assert policy.bands_for(None, "US") == policy.bands
    assert policy.bands_for("hero", "CN").block == 0.9995  # the work's override first
    assert policy_mod.loads(policy_mod.dumps(policy)) == policy
    document["territory_bands"] = {"China": {"review": 0.99, "block": 0.9999}}
    with pytest.raises(PolicyError, match="ISO 3166-1"):
        policy_mod.parse(document)
    document["territory_bands"] = {}
    document["appeals"] = {"respond_days": 20, "decide_days": 14}
    with pytest.raises(PolicyError, match="respond_days"):
        policy_mod.parse(document)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_catalog_made_before_territories_gains_them(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'old.sqlite3'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres").create_database()
    )
    catalog = Catalog(url)
    catalog.register("hero", title="Hero", owner="studio", aliases=(), references=())
    with catalog.engine.begin() as connection:  # as a database made before this version
        connection.execute(text("DROP TABLE work_territories"))
    catalog.close()

    catalog = Catalog(url)
    try:
        work = catalog.get_work("hero")
        assert work.territories == () and work.licensee_territories == {}
        catalog.update_work("hero", licensees=["genco", "othergen"])
        changed = catalog.update_work(
            "hero",
            territories={("work", ""): ["CN"], ("licensee", "genco"): ["CN", "JP"]},
        )
        assert changed.territories == ("CN",)
        assert changed.licensee_territories == {"genco": ("CN", "JP")}
        # A licence withdrawn takes its territories along.
        assert catalog.update_work("hero", licensees=["othergen"]).licensee_territories == {}
        catalog.remove_work("hero")
    finally:
        catalog.close()
