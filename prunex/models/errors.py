"""What the model zoo raises for a name it cannot build."""

from __future__ import annotations

from prunex.artifacts.errors import InputError


class UnknownModelError(InputError, KeyError):
    """Raised for a model name that is not registered (or an outside builder that cannot be found)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0])
