"""User-facing errors.

Every problem a user can fix (a typo, a bad file, a missing dependency) is a
`ZooError`: the CLI prints its message as one line and exits non-zero, with no
traceback. The message names the problem and the fix.
"""


class ZooError(Exception):
    """A problem the user can fix; `str(error)` is the one-line message."""

    exit_code = 2


class UnknownNameError(ZooError):
    """A model, variant, target or trainer name that is not registered."""


class ConfigError(ZooError):
    """An invalid configuration file, environment variable or flag."""


class WeightsError(ZooError):
    """Weights that are missing, corrupt, mismatched or for another model."""


class PluginError(ZooError):
    """A plugin that failed to load, raised in a hook or registered a bad spec."""


class ValidationError(ZooError):
    """An export whose outputs disagree with PyTorch beyond the tolerance."""


class UnavailableError(ZooError):
    """A target or backend this machine cannot run (no GPU, missing library)."""
