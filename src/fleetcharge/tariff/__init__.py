"""Tariffs: the model (:mod:`.model`), URDB/REopt import (:mod:`.urdb`) and the bundled library
(:mod:`.library`). Bills are computed by :func:`fleetcharge.billing.compute_bill`."""

from fleetcharge.tariff.library import TariffInfo, library_names, list_tariffs, load_tariff
from fleetcharge.tariff.model import (
    CoincidentDemandCharge,
    CoincidentPeakEvents,
    DemandPeriod,
    DemandRatchet,
    DemandTier,
    EnergyCharge,
    EnergyPeriod,
    EnergyTier,
    FixedCharges,
    FlatDemandCharge,
    MinimumCharge,
    SubscriptionCharge,
    Tariff,
    TariffWarning,
    TouDemandCharge,
    UnsupportedTariffFeature,
)
from fleetcharge.tariff.urdb import parse_urdb, parse_urdb_text, read_urdb

__all__ = [
    "CoincidentDemandCharge",
    "CoincidentPeakEvents",
    "DemandPeriod",
    "DemandRatchet",
    "DemandTier",
    "EnergyCharge",
    "EnergyPeriod",
    "EnergyTier",
    "FixedCharges",
    "FlatDemandCharge",
    "MinimumCharge",
    "SubscriptionCharge",
    "Tariff",
    "TariffInfo",
    "TariffWarning",
    "TouDemandCharge",
    "UnsupportedTariffFeature",
    "library_names",
    "list_tariffs",
    "load_tariff",
    "parse_urdb",
    "parse_urdb_text",
    "read_urdb",
]
