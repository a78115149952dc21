"""The one exception type that the command line turns into a one-line message."""


class AdtrError(Exception):
    """A problem with the user's input or environment, explained in the message.

    The command line prints ``error: <message>`` and exits with status 2 instead of
    showing a traceback; library users can catch it like any other exception.
    """


class DataError(AdtrError, ValueError):
    """A data folder, image or mask is missing, unreadable or has the wrong shape."""


class ConfigError(AdtrError, ValueError):
    """A parameter (profile, backbone, image size, stages, ...) has a value we cannot use."""


class WeightsError(AdtrError, FileNotFoundError):
    """Pretrained weights were asked for and cannot be found offline."""


class UndefinedMetricError(AdtrError, ValueError):
    """A metric is not defined for the given labels (e.g. AUROC with one class only)."""


class SchemaError(AdtrError, ValueError):
    """A result file does not have the layout of ``adtr.schema`` (a missing or unknown field)."""
