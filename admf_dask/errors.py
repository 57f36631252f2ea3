"""Errors a user can fix.

`InputError` is bad input (config, data file, model file, argument): the CLI prints one line
``error: <where>: <what>; <how to fix>`` and exits 2 with no traceback. Any other exception is a bug
(exit 1).
"""

from __future__ import annotations


class OneLineError(Exception):
    """An error the user sees as one line: ``<where>: <what>; <how to fix>``."""

    def __init__(self, where: str, what: str, fix: str | None = None) -> None:
        self.where = where
        self.what = what
        self.fix = fix
        super().__init__(self.line)

    def __reduce__(self) -> tuple:
        # raised inside a task on a worker (a bad bar of a lazily read file): the client
        # unpickles it with its three parts (the default would call __init__(line) and fail)
        return (type(self), (self.where, self.what, self.fix))

    @property
    def line(self) -> str:
        """The one-line message (no newlines, whatever the parts contain)."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f"; {self.fix}"
        return " ".join(text.split())


class InputError(OneLineError):
    """Bad input, reported as one line that says where, what and how to fix it.

    Parameters
    ----------
    where : str
        The place: a pipeline key (``features.sma_10.window``), a file (``prices.csv row 17``) or
        an argument (``--set``).
    what : str
        What is wrong, with the offending value.
    fix : str, optional
        How to fix it.
    """


class ConfigError(InputError):
    """A pipeline file or ``--set`` override is wrong."""


class DataError(InputError):
    """A market-data or signal file is wrong."""


class ModelFileError(InputError):
    """A model file is corrupt, foreign or unsafe."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), sorted(map(str, choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
