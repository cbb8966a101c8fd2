"""The bundled tariff library (``fleetcharge/tariff_library``) and tariff lookup by name or path.

Bundled tariffs are named by their path inside the library without ``.json``, e.g.
``oregon/PGE_Sch85_TEMPLATE_placeholder_demand``; ``tariff_library/PROVENANCE.txt`` says where each
file came from. :func:`load_tariff` also accepts a file path, a name with ``.json`` or any unique
suffix of a name (``PGE_Sch85_TEMPLATE_placeholder_demand``).
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from fleetcharge.errors import InputError
from fleetcharge.tariff.model import Tariff
from fleetcharge.tariff.urdb import parse_urdb_text, read_urdb

__all__ = ["TariffInfo", "library_names", "list_tariffs", "load_tariff"]

_PACKAGE = "fleetcharge"
_FOLDER = "tariff_library"


@dataclass(frozen=True)
class TariffInfo:
    """One bundled tariff, for listings.

    Attributes
    ----------
    name : str
        Library name, e.g. ``"oregon/PGE_Sch85_TEMPLATE_placeholder_demand"``.
    utility, rate_name, label : str
        From the tariff JSON (empty when absent).
    features : tuple of str
        Components present (``tou_energy``, ``flat_demand``, ``tou_demand`` …).
    unsupported : tuple of str
        Warnings raised on import: fields fleetcharge does not model.
    """

    name: str
    utility: str
    rate_name: str
    label: str
    features: tuple[str, ...]
    unsupported: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON view (lists instead of tuples)."""
        return {
            "name": self.name,
            "utility": self.utility,
            "rate_name": self.rate_name,
            "label": self.label,
            "features": list(self.features),
            "unsupported": list(self.unsupported),
        }


def _root() -> Traversable:
    return resources.files(_PACKAGE).joinpath(_FOLDER)


def _walk(node: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    out = []
    for child in node.iterdir():
        if child.is_dir():
            out.extend(_walk(child, f"{prefix}{child.name}/"))
        elif child.name.endswith(".json"):
            out.append((f"{prefix}{child.name[: -len('.json')]}", child))
    return out


@lru_cache(maxsize=1)
def _files() -> dict[str, Traversable]:
    return dict(sorted(_walk(_root(), "")))


def library_names() -> list[str]:
    """Names of all bundled tariffs, sorted."""
    return list(_files())


def _load_bundled(name: str) -> Tariff:
    return parse_urdb_text(_files()[name].read_text(encoding="utf-8"), f"{name}.json (bundled)")


@lru_cache(maxsize=1)
def _infos() -> tuple[TariffInfo, ...]:
    infos = []
    for name in library_names():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = _load_bundled(name)
        infos.append(
            TariffInfo(
                name=name,
                utility=t.utility,
                rate_name=t.name,
                label=t.label,
                features=t.features,
                unsupported=tuple(str(w.message) for w in caught),
            )
        )
    return tuple(infos)


def list_tariffs() -> list[TariffInfo]:
    """Every bundled tariff with its utility, rate name, features and unsupported fields."""
    return list(_infos())


def resolve_name(ref: str) -> str:
    """The bundled tariff a reference names: exact name (``.json`` optional, any letter case) or
    a unique suffix of a name.

    Raises
    ------
    InputError
        No match (listing close matches), or an ambiguous suffix (listing the candidates).
    """
    names = library_names()
    r = ref.replace("\\", "/").strip().strip("/")
    if r.lower().endswith(".json"):
        r = r[: -len(".json")]
    if r.lower().startswith(f"{_FOLDER}/"):
        r = r[len(_FOLDER) + 1 :]
    low = r.lower()
    exact = [n for n in names if n.lower() == low]
    if exact:
        return exact[0]
    suffix = [n for n in names if low and n.lower().endswith(low)]
    boundary = [n for n in suffix if n.lower().endswith("/" + low)]
    if len(boundary) == 1:
        return boundary[0]
    if len(suffix) == 1:
        return suffix[0]
    if len(suffix) > 1:
        raise InputError(
            f"{ref!r} matches {len(suffix)} bundled tariffs: {', '.join(suffix)}; "
            "give more of the name",
            location="tariff",
        )
    stems = {n.rsplit("/", 1)[-1]: n for n in names}
    close = difflib.get_close_matches(r, list(stems), n=5, cutoff=0.5)
    close_full = [stems[c] for c in close]
    close_full += [n for n in difflib.get_close_matches(r, names, n=5, cutoff=0.5)]
    close_full += [n for n in names if low and low in n.lower()]
    seen: list[str] = []
    for c in close_full:
        if c not in seen:
            seen.append(c)
    hint = f" Close matches: {', '.join(seen[:5])}." if seen else ""
    raise InputError(
        f"no tariff file or bundled tariff named {ref!r}.{hint} "
        "Run `fleetcharge tariffs list` to see all bundled tariffs, or give the path of a "
        "URDB JSON file.",
        location="tariff",
    )


def load_tariff(ref: str | Path, base_dir: Path | None = None) -> Tariff:
    """Load a tariff from a file path or the bundled library.

    Parameters
    ----------
    ref : str or Path
        A path to a URDB/REopt JSON file (absolute, relative to ``base_dir`` or to the working
        directory, tried in that order), else a bundled name such as
        ``"oregon/PGE_Sch85_TEMPLATE_placeholder_demand"`` (``.json`` optional) or a unique suffix
        of one (``"PGE_Sch85_TEMPLATE_placeholder_demand"``).
    base_dir : Path, optional
        Directory relative paths are resolved against first (e.g. the scenario file's folder).

    Returns
    -------
    Tariff

    Raises
    ------
    InputError
        Unknown or ambiguous reference, or a malformed tariff file.

    Warns
    -----
    UnsupportedTariffFeature
        For tariff fields that are not modelled (see :func:`fleetcharge.tariff.parse_urdb`).
    """
    p = Path(ref).expanduser()
    candidates = [p] if p.is_absolute() else []
    if not p.is_absolute():
        if base_dir is not None:
            candidates.append(Path(base_dir) / p)
        candidates.append(Path.cwd() / p)
    for c in candidates:
        if c.is_file():
            return read_urdb(c)
    return _load_bundled(resolve_name(str(ref)))
