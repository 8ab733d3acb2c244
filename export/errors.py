"""Export failures that carry a one-line message with the fix."""

from __future__ import annotations


class ExportError(Exception):
    """A failure the user can act on: `str(err)` is one line saying what is wrong and what to do."""

    exit_code = 2


class UnsupportedArchitectureError(ExportError):
    """The model's architecture is not one cpmdesk can export."""


class MissingFilesError(ExportError):
    """The source lacks files an export needs."""


class CorruptWeightsError(ExportError):
    """A weight file is truncated or unreadable."""


class NotEnoughDiskError(ExportError):
    """The estimated space the export needs is not free."""


class TrustRemoteCodeError(ExportError):
    """The model runs its own Python code and the user did not allow it."""


class HubUnreachableError(ExportError):
    """The Hugging Face Hub could not be reached to download a model."""


class OutputExistsError(ExportError):
    """OUT exists and is not empty, and --force was not given."""


class ValidationFailedError(ExportError):
    """The exported IR does not reproduce the source model closely enough."""


class ConfigFileError(ExportError):
    """A model's configuration file (config.json and kin) cannot be read or is not a JSON object."""
