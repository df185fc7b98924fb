"""The one exception type for user mistakes: the CLI prints its message as one line, without a traceback."""


class UserError(Exception):
    """Bad input or configuration; the message says what to do."""


class EmptySplitError(UserError):
    """A split that the configuration leaves empty (e.g. split=val with val_fraction=0)."""
