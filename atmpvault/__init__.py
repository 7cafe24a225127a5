"""atmpvault: a version-controlled archive for ATMP manufacturing records."""

__version__ = "0.1.0"
