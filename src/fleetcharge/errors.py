"""Errors raised at the input edge.

Every message names the file, the row or field, what is wrong and how to fix it; the CLI prints it
and exits with a non-zero code without writing anything.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a scenario, CSV, tariff or option that cannot be used as given.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    file : str, optional
        The file the problem is in.
    location : str, optional
        Where in the file: ``"row 12, column departure"`` or ``"chargers[3].max_kw"``.
    """

    def __init__(self, message: str, file: str | None = None, location: str | None = None):
        self.file = file
        self.location = location
        self.detail = message
        where = ": ".join(x for x in (file, location) if x)
        super().__init__(f"{where}: {message}" if where else message)


class ConsistencyError(InputError):
    """Inputs that are each valid but contradict each other (overlapping sessions, unknown ids)."""
