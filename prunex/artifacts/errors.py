"""The kinds of failure a user can meet, each with its exit status at the command line.

- :class:`InputError` (exit 2): a bad option, file or directory; the message says what is wrong and what to do.
- :class:`NotEquivalentError` (exit 3): a result that failed its numerical verification (a compiler pass, an
  export); nothing was shipped.

Every package's own error types derive from these, so the command line can answer each with one line.
"""

from __future__ import annotations


class PrunexError(Exception):
    """Base of the errors prunex raises on purpose."""

    exit_code = 1


class InputError(PrunexError, ValueError):
    """Bad input: an option, a file, a directory. Exit status 2."""

    exit_code = 2


class NotEquivalentError(PrunexError):
    """A result that does not compute what it should (verification failed). Exit status 3."""

    exit_code = 3
