"""Exceptions with messages that name the offending file or key and the fix."""


class ReprolabError(Exception):
    """Base class of every error reprolab raises on purpose."""


class ConfigError(ReprolabError):
    """A configuration key is missing, has the wrong type or an invalid value."""


class DataError(ReprolabError):
    """A data file is malformed, truncated or inconsistent."""


class ChecksumError(DataError):
    """A file's checksum differs from the one recorded in ``config/datasets.yaml``."""


class DownloadError(DataError):
    """A download failed after its retries."""


class MissingDataError(DataError):
    """A dataset that needs credentials or a manual step is absent."""
