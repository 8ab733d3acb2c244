"""A model's JSON configuration files (config.json, sentence_bert_config.json) read with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from export.errors import ConfigFileError, MissingFilesError


def read_config(path: Path) -> dict:
    """The JSON object in `path`; one-line errors: MissingFilesError when it is absent, ConfigFileError when it
    cannot be read or is not a JSON object."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise MissingFilesError(f"{path} is missing; copy the model's configuration files into the folder") from err
    except OSError as err:
        raise ConfigFileError(f"{path} cannot be read ({err.strerror or err}); check its permissions") from err
    try:
        config = json.loads(data.decode("utf-8"))
    except ValueError as err:  # json.JSONDecodeError and UnicodeDecodeError
        raise ConfigFileError(f"{path} is not valid JSON ({type(err).__name__}: {err}); re-download the "
                              "model") from err
    if not isinstance(config, dict):
        raise ConfigFileError(f"{path} holds a JSON {type(config).__name__}, not an object of settings; "
                              "re-download the model")
    return config
