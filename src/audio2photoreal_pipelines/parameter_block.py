"""The base of every typed parameter block (``params:<block>`` of a pipeline).

Kedro (1.3+, ``kedro.validation``) builds the annotated type of each ``params:`` node input before
the first node runs, so a misspelt key, a wrong type, a value out of range or widths that disagree
stop ``kedro run`` there. Pydantic does the checking; this class forbids unknown keys, freezes the
block, and ``model_validate`` (what Kedro and the builders call) reports every problem on one line,
each led by its key.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError


def _true_or_false(value: object) -> object:
    # Pydantic would also take "yes", "on" or 1 for a bool; a switch here is true or false.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


# Strict: pydantic would take true as 1. Floats stay lax, since YAML reads 1e-4 as a string.
Count = Annotated[int, Strict(), Field(ge=0)]
PositiveCount = Annotated[int, Strict(), Field(ge=1)]
Switch = Annotated[bool, BeforeValidator(_true_or_false)]
Share = Annotated[float, Field(ge=0, le=1)]


class ParameterError(ValueError):
    """A parameter block that cannot be built: ``<key>: <problem>``, problems joined by ``; ``."""


class ParameterBlock(BaseModel):
    """A frozen block of parameters with no unknown keys (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any):  # noqa: ANN206 - pydantic's own signature
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as err:
            raise ParameterError(describe(err, cls)) from None

    def as_dict(self) -> dict[str, Any]:
        """The block as plain JSON-ready values, as YAML would give them (for hashes and logs)."""
        return self.model_dump(mode="json")


def describe(err: ValidationError, block: type[BaseModel]) -> str:
    """One line for all of `err`'s problems, each led by its dotted key."""
    problems = []
    for problem in err.errors(include_url=False):
        key = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            message = "unknown key" + _did_you_mean(problem["loc"], block)
        elif key and problem["type"] != "missing" and "got " not in message:
            message += f", got {problem['input']!r}"
        problems.append(f"{key}: {message}" if key else message)
    return "; ".join(problems)


def _did_you_mean(loc: tuple, block: type[BaseModel]) -> str:
    if len(loc) != 1:
        return ""
    close = difflib.get_close_matches(str(loc[0]), list(block.model_fields), n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(block.model_fields)})"
