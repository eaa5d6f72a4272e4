"""The one error type the converter reports to its user."""


class ExportError(Exception):
    """A problem the user can fix (bad option, missing or wrong file, unreachable handle).

    `export.py` prints it as one line and exits non-zero; anything else is a bug and keeps
    its traceback.
    """
