"""Accelerator configurations chosen by a user: a preset, a TOML configuration file and one
command-line option per core size.

A configuration file is TOML (read with the standard library's ``tomllib``) of top-level keys:
``preset`` (the configuration it starts from, default the ``--preset`` option), then any field
of ``rtl.config.AcceleratorConfig`` (``data_words``, ``buffer_slots``, ``rows``,
``dataflow``, ``stall_table`` as a table, ...)::

    preset = "nand_spin"
    data_words = 8192          # a 3 x 32 x 32 input needs two regions of 3072 words
    patch_mask_bits = 64       # 7 x 7 kernels

Every key is validated before any work: an unknown key is refused with the closest known one
(``difflib``), a value of the wrong type or out of range with the configuration's own message
(the key, the value, what is allowed). The command-line size options
(:func:`add_size_options`: ``--data-words``, ``--buffer-slots``, ..., and ``--conv-map``) apply
after the file, so a flag overrides it. Changing ``dataflow`` alone adds its route to ``routes``
(``AcceleratorConfig.with_dataflow``).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path

from rtl.config import CONV_MAPS, SIZE_FIELDS, AcceleratorConfig, preset, preset_names

from sim.util import UserError

__all__ = ["ConfigError", "CONFIG_KEYS", "size_option", "add_size_options",
           "config_from_mapping", "load_config_file", "resolve_config"]

#: The keys a configuration file may hold: ``preset`` and every configuration field.
CONFIG_KEYS = ("preset",) + tuple(f.name for f in dataclasses.fields(AcceleratorConfig))


class ConfigError(UserError):
    """A configuration file or option that is not valid; the message names the file or
    option, the key, the value and what is allowed."""


def size_option(field: str) -> str:
    """The command-line option of a size field: ``data_words`` -> ``--data-words``."""
    return "--" + field.replace("_", "-")


def add_size_options(parser) -> None:
    """Add ``--config FILE`` and one option per core size (``rtl.config.SIZE_FIELDS``) to an
    ``argparse`` parser; the values stay None unless given."""
    parser.add_argument("--config", metavar="FILE",
                        help="TOML configuration file: 'preset' and any configuration field "
                        "(data_words = 8192, ...); the options below override it")
    for name, (default, lo, hi, pow2, what) in SIZE_FIELDS.items():
        parser.add_argument(size_option(name), dest=name, metavar="N", default=None,
                            help=f"{what}: {'a power of two ' if pow2 else ''}in [{lo}, {hi}] "
                            f"(preset default {default})")
    parser.add_argument("--conv-map", dest="conv_map", metavar="{" + ",".join(CONV_MAPS) + "}",
                        default=None,
                        help="mapping of multiply convolutions (AcceleratorConfig.conv_map): "
                        "gather (the preset's) or fig10 (seed 001 Fig. 7 / Fig. 10, needs the "
                        "route nand_inmem)")


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(CONFIG_KEYS)}"


def config_from_mapping(values: dict, *, base: AcceleratorConfig,
                        where: str) -> AcceleratorConfig:
    """``base`` with the fields of ``values`` (a dict key -> value, ``preset`` excluded);
    a one-line :class:`ConfigError` starting with ``where`` for an unknown key, a wrong type
    or an out-of-range value."""
    fields = dict(values)
    for key in fields:
        if key not in CONFIG_KEYS or key == "preset":
            raise ConfigError(f"{where}: unknown key {key!r}; {_suggest(key)}")
    try:
        config = base
        if "dataflow" in fields and "routes" not in fields:
            config = config.with_dataflow(fields.pop("dataflow"))
        return dataclasses.replace(config, **fields)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def load_config_file(path, *, preset_name: str | None = None) -> tuple[str, AcceleratorConfig]:
    """``(preset name, configuration)`` of the TOML file ``path`` (module docstring).

    ``preset_name``: the preset given on the command line, if any; the file's ``preset`` key
    must then agree with it. Without either, ``nand_spin``.

    Raises
    ------
    ConfigError
        The file cannot be read or is not TOML, a key is unknown, a value has the wrong type
        or is out of range, or the two presets differ.
    """
    where = f"--config {path}"
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as e:     # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"{where}: cannot read the file ({reason})") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e}") from None
    except RecursionError:             # tomllib parses nested arrays / tables recursively
        raise ConfigError(f"{where}: not valid TOML: arrays or tables nested too deep for the "
                          f"parser (a configuration nests at most one table)") from None
    name = values.pop("preset", None)
    if name is not None:
        if not isinstance(name, str) or name not in preset_names():
            raise ConfigError(f"{where}: preset must be one of {', '.join(preset_names())}, "
                              f"not {name!r}")
        if preset_name is not None and preset_name != name:
            raise ConfigError(f"{where}: the file's preset {name!r} differs from --preset "
                              f"{preset_name}; give one of them")
    name = name or preset_name or "nand_spin"
    return name, config_from_mapping(values, base=preset(name), where=where)


def _size_value(field: str, text) -> int:
    try:
        return int(str(text), 10)
    except ValueError:
        _, lo, hi, pow2, _ = SIZE_FIELDS[field]
        raise ConfigError(f"{size_option(field)} must be {'a power of two' if pow2 else 'an int'}"
                          f" in [{lo}, {hi}], not {text!r}") from None


def resolve_config(*, preset_name: str | None, config_file=None, sizes: dict | None = None,
                   dataflow: str | None = None,
                   conv_map: str | None = None) -> tuple[str, AcceleratorConfig]:
    """``(preset name, configuration)`` from the command line: the preset (default
    ``nand_spin``), then the configuration file, then ``dataflow``, the size options
    (``sizes``: field -> the option's text, None when not given) and ``conv_map``
    (``--conv-map``, None when not given; ``fig10`` adds the route ``nand_inmem`` the mapping
    runs on, as ``--postproc in_memory`` does).

    Raises
    ------
    ConfigError
        Any of them is not valid (the message names the option or the file, and the key).
    """
    if preset_name is not None and preset_name not in preset_names():
        raise ConfigError(f"--preset must be one of {', '.join(preset_names())}, not "
                          f"{preset_name!r}")
    if config_file is not None:
        name, config = load_config_file(config_file, preset_name=preset_name)
    else:
        name = preset_name or "nand_spin"
        config = preset(name)
    if dataflow:
        config = config_from_mapping({"dataflow": dataflow}, base=config, where="--dataflow")
    for field, text in (sizes or {}).items():
        if text is None:
            continue
        config = config_from_mapping({field: _size_value(field, text)}, base=config,
                                     where=size_option(field))
    if conv_map is not None:
        if conv_map not in CONV_MAPS:
            raise ConfigError(f"--conv-map must be one of {', '.join(CONV_MAPS)}, not "
                              f"{conv_map!r}")
        fields = {"conv_map": conv_map}
        routes = tuple(config.routes or ())
        if conv_map == "fig10" and "nand_inmem" not in routes:   # as --postproc in_memory
            fields["routes"] = routes + ("nand_inmem",)
        config = config_from_mapping(fields, base=config, where="--conv-map")
    return name, config
