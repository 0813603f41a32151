"""The one model of main.cf, shared by both backends, the checks, the notebooks and the senders.

``model`` reads main.cf as Postfix does (syntax, ``$name`` expansion, the generated defaults of Postfix
3.7 in ``data/postconf-defaults.json``) and edits it as ``postconf -e`` does; ``postconf_alike`` is the
``postconf`` work-alike for machines without Postfix, built on it.
"""

from .model import DEFAULT_CONFIG_DIR, ConfigError, MainCf, TLSFiles, defaults, parse

__all__ = ["DEFAULT_CONFIG_DIR", "ConfigError", "MainCf", "TLSFiles", "defaults", "parse"]
