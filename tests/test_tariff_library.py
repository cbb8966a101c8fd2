"""The bundled tariff library: every file loads, listings, and lookup by name or path."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from fleetcharge.errors import InputError
from fleetcharge.tariff import (
    Tariff,
    UnsupportedTariffFeature,
    library_names,
    list_tariffs,
    load_tariff,
)

SHARED = Path("/work/shared/tariffs")
REACTIVE = "demandreactivepowercharge: reactive-power"
LABEL_ONLY = "urdb_label: the scenario only names a URDB rate"

# Every bundled tariff, with the warning its import must raise (None: imports silently).
EXPECTED = {
    "california_ev/PGE_BEV-2-S_2025-09-08": REACTIVE,
    "california_ev/PGE_BEV-2-S_2025-09-08_Neat": REACTIVE,
    "california_ev/PGE_BEV-2-S_subscription_fleetcharge": REACTIVE,
    "california_ev/SCE_TOU-8_Option-D_Under-2-kV": REACTIVE,
    "california_ev/SCE_TOU-EV-9_below-2kV_2025-09-08_Neat": REACTIVE,
    "california_ev/SDGE_EV-HP_EECC-CPP-D_2025-09-08_Neat": REACTIVE,
    "oregon/PGE_Sch85_TEMPLATE_placeholder_demand": None,
    "other_real/Sacramento_Municipal_Utility_District_CI_TOD3_Commercial_and_Industrial_TOD_"
    "Secondary_500_999_kW": None,
    "other_real/Sacramento_Municipal_Utility_District_CI_TOD4_Commercial_and_Industrial_TOD_"
    "Secondary_1000_kW": None,
    "other_real/San_Diego_Gas_Electric_Co_AL_TOU_Secondary_Above_500kW": REACTIVE,
    "reopt_api_tests/Entergy_AR_LPS-TOU_5a592c995457a3371c423a7d": None,
    "reopt_api_tests/PECO_GS-HT_coincident_53ac8daa5257a3406ac32a35": None,
    "reopt_api_tests/SCE_GS-2_TOU_B_55fc81d7682bea28da64f9ae": None,
    "reopt_api_tests/custom_rate_reopt_api": None,
    "reopt_jl_tests/URDB_customer_generation": LABEL_ONLY,
    "reopt_jl_tests/coincident_peak": None,
    "reopt_jl_tests/lookback_rate": LABEL_ONLY,
    "reopt_jl_tests/monthly_rate": None,
    "reopt_jl_tests/multi_tier_urdb_response": None,
    "reopt_jl_tests/subhourly_with_urdb": None,
    "reopt_jl_tests/tiered_energy_demand": None,
    "reopt_jl_tests/tiered_energy_rate": LABEL_ONLY,
    "reopt_jl_tests/tiered_tou_demand": None,
    "reopt_jl_tests/urdb_rate": LABEL_ONLY,
}


def test_library_holds_exactly_the_expected_files() -> None:
    assert library_names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_bundled_tariff_loads(name: str) -> None:
    expected = EXPECTED[name]
    if expected is None:
        tariff = load_tariff(name)  # any warning would fail: warnings are errors
        assert tariff.notes == ()
    else:
        with pytest.warns(UnsupportedTariffFeature, match=expected):
            tariff = load_tariff(name)
        assert tariff.notes
    assert isinstance(tariff, Tariff)
    if expected != LABEL_ONLY:
        assert tariff.energy is not None  # every real rate charges for energy


def test_bundled_copies_match_the_research_collection() -> None:
    if not SHARED.is_dir():
        pytest.skip("research collection not present")
    root = resources.files("fleetcharge").joinpath("tariff_library")
    shared = sorted(p.relative_to(SHARED).as_posix() for p in SHARED.rglob("*.json"))
    for rel in shared:
        assert root.joinpath(rel).read_bytes() == (SHARED / rel).read_bytes(), rel
    assert root.joinpath("PROVENANCE.txt").read_text(encoding="utf-8").startswith(
        (SHARED / "PROVENANCE.txt").read_text(encoding="utf-8")
    )


def test_list_tariffs() -> None:
    infos = {i.name: i for i in list_tariffs()}
    assert set(infos) == set(EXPECTED)
    sch85 = infos["oregon/PGE_Sch85_TEMPLATE_placeholder_demand"]
    assert sch85.utility == "Portland General Electric Co"
    assert sch85.rate_name.startswith("Schedule 85 Large Nonresidential")
    assert sch85.features == ("tou_energy", "flat_demand", "tou_demand", "fixed")
    assert sch85.unsupported == ()
    bev = infos["california_ev/PGE_BEV-2-S_subscription_fleetcharge"]
    assert "subscription" in bev.features and "flat_demand" not in bev.features
    assert any("demandreactivepowercharge" in u for u in bev.unsupported)
    d = bev.to_dict()
    assert d["name"] == bev.name and isinstance(d["features"], list)
    json.dumps([i.to_dict() for i in infos.values()])


@pytest.mark.parametrize(
    "ref",
    [
        "oregon/PGE_Sch85_TEMPLATE_placeholder_demand",
        "oregon/PGE_Sch85_TEMPLATE_placeholder_demand.json",
        "PGE_Sch85_TEMPLATE_placeholder_demand",
        "pge_sch85_template_placeholder_demand.json",
        "Sch85_TEMPLATE_placeholder_demand",
        "tariff_library/oregon/PGE_Sch85_TEMPLATE_placeholder_demand.json",
    ],
)
def test_load_by_name_and_suffix(ref: str) -> None:
    assert load_tariff(ref).label == "CONSTRUCTED-PGE-SCH85-S"


def test_load_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = resources.files("fleetcharge").joinpath(
        "tariff_library", "oregon", "PGE_Sch85_TEMPLATE_placeholder_demand.json")
    (tmp_path / "site").mkdir()
    target = tmp_path / "site" / "my_rate.json"
    with resources.as_file(src) as f:
        shutil.copy(f, target)
    assert load_tariff(target).source == str(target)
    assert load_tariff("my_rate.json", base_dir=tmp_path / "site").source == str(target)
    monkeypatch.chdir(tmp_path)
    assert load_tariff("site/my_rate.json").label == "CONSTRUCTED-PGE-SCH85-S"
    assert load_tariff(str(target)).label == "CONSTRUCTED-PGE-SCH85-S"


def test_unknown_reference_lists_close_matches() -> None:
    with pytest.raises(
        InputError,
        match=r"no tariff file or bundled tariff named 'PGE_Sch58_TEMPLATE'\. Close matches: "
        r".*oregon/PGE_Sch85_TEMPLATE_placeholder_demand.*fleetcharge tariffs list",
    ):
        load_tariff("PGE_Sch58_TEMPLATE")
    with pytest.raises(InputError, match=r"named 'zzz'\. Run `fleetcharge tariffs list`"):
        load_tariff("zzz")


def test_ambiguous_suffix_lists_candidates() -> None:
    with pytest.raises(InputError, match=r"'Neat' matches 3 bundled tariffs: .*give more"):
        load_tariff("Neat")


def test_bad_file_path_reports_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.json: line 1, column 2: not valid JSON"):
        load_tariff(bad)
