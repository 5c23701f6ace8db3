"""The one error the local stack raises, so the CLI can print it without a traceback."""

from __future__ import annotations

__all__ = ["StackError"]


class StackError(RuntimeError):
    """The local stack could not be installed, started, reached or stopped.

    The message is written for the person at the terminal: it names the port, the file or
    the command to look at.
    """
