"""Domain errors, each with the exit code the CLI reports."""

from __future__ import annotations


class VaultError(Exception):
    """An operation failed or was refused; the message tells the user what to do."""

    exit_code = 1


class InvalidInput(VaultError):
    """A value given on the command line is not acceptable; nothing was written."""

    exit_code = 2


class NotFound(VaultError):
    """A document, version or vault does not exist."""


class NotAVault(VaultError):
    """The path given is not an atmpvault vault."""


class VaultExists(VaultError):
    """`init` was asked to create a vault where one already exists."""


class VaultBusy(VaultError):
    """Another writer held the vault for longer than the lock timeout."""


class NothingChanged(VaultError):
    """A new version would be identical to the current one."""


class AlreadyArchived(VaultError):
    """The same bytes are already archived as another document (--allow-duplicate overrides)."""


class IntegrityError(VaultError):
    """The archive does not agree with itself: a stored object or a projection differs."""

    exit_code = 3


class RecordFormatError(VaultError):
    """A stored record is of a format (or has fields) this version of atmpvault cannot read."""


class RepositoryFailure(VaultError):
    """The repository refused an operation or could not be read (git's own error wrapped)."""


class InvalidRules(InvalidInput):
    """The rules file (packaged or the vault's own) cannot be used; nothing was derived."""


class DeliveryFailed(VaultError):
    """The SMTP server could not be reached or refused the message; nothing was recorded."""


class AlreadySent(VaultError):
    """A notice with this key was sent before."""


class TemplateProblem(VaultError):
    """A template is missing or could not be rendered with the values given."""


class QueryError(InvalidInput):
    """A search query is malformed; the message says where."""


class AccessDenied(VaultError):
    """The acting user may not do this (not a user, disabled, or without the role)."""


class SignatureRefused(VaultError):
    """A signature attempt failed (a key that is not the user's, a meaning their roles do
    not allow); the attempt itself is recorded."""

    def __init__(self, message: str, login: str) -> None:
        super().__init__(message)
        self.login = login


class UpstreamUnavailable(VaultError):
    """The shared upstream could not be reached; nothing was written anywhere."""


class UpstreamBusy(VaultError):
    """Another workstation pushed first; the command is run again on the new tip."""
