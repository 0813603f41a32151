"""labsim: a private, real Postfix lab for "Securing Postfix with TLS" (LPIC-2 202-450)."""

from .errors import LabError
from .settings import Settings

__all__ = ["LabError", "Settings"]
__version__ = "0.1.0"
