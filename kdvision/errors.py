"""User-facing errors: one clear line naming the file, key, path or layer; exit code 2."""


class UserError(Exception):
    """A problem with the user's input (config, data, checkpoint), not a bug in kdvision.

    The CLI prints ``kdvision: error: <message>`` on one line and exits with code 2.
    """

    exit_code = 2


class NonFiniteLossError(UserError):
    """A loss term became NaN or inf; the run stops and keeps its last good checkpoint."""
