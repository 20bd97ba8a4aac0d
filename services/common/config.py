"""Typed, validated service configuration read from the environment.

Every service declares a subclass of :class:`ServiceSettings` with its own
environment prefix and extra fields, and calls :func:`load_settings` once at
start-up. Any invalid or missing setting stops the service with a
:class:`ConfigError` that names every offending environment variable and the
problem, never the value (secrets are ``pydantic.SecretStr``)::

    class KernelSettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="PINK_KERNEL_")
        journal_dir: Path
        api_key: SecretStr

    settings = load_settings(KernelSettings)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

__all__ = ["ConfigError", "ServiceSettings", "env_var_name", "load_settings"]

MIB = 1024 * 1024
# gRPC channel arguments are C ints.
_MAX_GRPC_INT = 2**31 - 1


class ConfigError(Exception):
    """Invalid or missing configuration; stops the service at start-up.

    Raised by :func:`load_settings` with one ``NAME: problem`` line per invalid, missing
    or unknown setting (``problems`` holds the same pairs); services may raise it with a
    plain message for checks of their own (e.g. a journal made with other parameters).
    """

    def __init__(self, message: str, *, problems: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)

    @classmethod
    def from_problems(cls, settings: str, problems: Iterable[tuple[str, str]]) -> ConfigError:
        """One error listing every ``(name, problem)`` of the ``settings`` class."""
        listed = tuple(problems)
        lines = "\n".join(f"  {name}: {problem}" for name, problem in listed)
        return cls(f"invalid configuration for {settings} ({len(listed)} problem(s)):\n{lines}", problems=listed)


class ServiceSettings(BaseSettings):
    """Settings every PINK service has. Subclasses set ``env_prefix`` and add their own fields."""

    model_config = SettingsConfigDict(
        env_prefix="PINK_",
        extra="forbid",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,
        case_sensitive=False,
    )

    host: str = Field(default="127.0.0.1", min_length=1, description="gRPC listen address.")
    port: int = Field(default=0, ge=0, le=65535, description="gRPC port; 0 picks an ephemeral port (tests).")
    metrics_host: str = Field(default="127.0.0.1", min_length=1, description="Metrics HTTP listen address.")
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Metrics HTTP port; None serves no metrics endpoint."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    drain_seconds: float = Field(
        default=0.0, ge=0.0, le=60.0, description="Delay between NOT_SERVING and server.stop on shutdown."
    )
    grace_seconds: float = Field(
        default=5.0, gt=0.0, le=120.0, description="Time in-flight RPCs get to finish on shutdown."
    )
    max_concurrent_rpcs: int = Field(default=256, gt=0, description="RPCs beyond this fail RESOURCE_EXHAUSTED.")
    max_message_bytes: int = Field(
        default=16 * MIB, gt=0, le=_MAX_GRPC_INT, description="Max gRPC message size, sent and received."
    )


S = TypeVar("S", bound=ServiceSettings)
#: The prefix of :class:`ServiceSettings`; services set their own (``PINK_KERNEL_``, ...).
SHARED_PREFIX = "PINK_"


def env_var_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of ``cls`` (prefix + upper-case name, or its alias)."""
    info = cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias.upper()
    if info is not None and info.alias is not None:
        return info.alias.upper()
    prefix = str(cls.model_config.get("env_prefix") or "")
    return f"{prefix}{field}".upper()


def _problem(cls: type[BaseSettings], error: ErrorDetails) -> tuple[str, str]:
    loc = error["loc"]
    if not loc:
        return (cls.__name__, error["msg"])
    name = env_var_name(cls, str(loc[0]))
    if len(loc) > 1:
        name += " (" + ".".join(str(part) for part in loc[1:]) + ")"
    problem = error["msg"]
    if error["type"] == "missing":
        problem = "required but not set"
    elif error["type"] == "extra_forbidden":
        problem = "unknown setting"
    return (name, problem)


def _unknown_variables(cls: type[BaseSettings]) -> list[str]:
    """Environment variables with the service's own prefix that name no setting.

    A typo such as ``PINK_KERNEL_TRADING_ENABLE=false`` would otherwise leave the default in
    force without a word. The shared ``PINK_`` prefix of the base class is not checked: other
    services and tools use it.
    """
    prefix = str(cls.model_config.get("env_prefix") or "").upper()
    if not prefix or prefix == SHARED_PREFIX:
        return []
    known = {env_var_name(cls, field) for field in cls.model_fields}
    return sorted(name for name in os.environ if name.upper().startswith(prefix) and name.upper() not in known)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build ``cls`` from the environment, with ``overrides`` taking precedence.

    Raises:
        ConfigError: listing every invalid, missing or unknown setting by its
            environment variable name, without any value.
    """
    # A plain callable keeps mypy from checking the overrides against the synthesized
    # __init__ signature: their names and types are validated by pydantic below.
    factory: Callable[..., S] = cls
    unknown = [(name, "unknown setting (misspelt?)") for name in _unknown_variables(cls)]
    try:
        settings = factory(**overrides)
    except ValidationError as error:
        problems = [_problem(cls, detail) for detail in error.errors(include_url=False, include_input=False)]
        raise ConfigError.from_problems(cls.__name__, [*problems, *unknown]) from error
    except SettingsError as error:
        # Raised by a settings source, e.g. a complex field whose variable is not valid JSON.
        # Its message names the field and the source, never the value.
        raise ConfigError.from_problems(cls.__name__, [(cls.__name__, str(error)), *unknown]) from error
    if unknown:
        raise ConfigError.from_problems(cls.__name__, unknown)
    return settings
