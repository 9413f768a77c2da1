"""Each unit of the data layout is stated once, in units.py, and every module imports it."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import audio2photoreal_pipelines
from audio2photoreal_pipelines import units

PACKAGE = Path(audio2photoreal_pipelines.__file__).parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "units.py")
# The names units.py defines, and the other names the same facts went by before it existed.
UNIT_NAMES = {name for name in vars(units) if name.isupper()} | {
    "FRAME_RATE",
    "WAVEFORM_RATE",
    "POSE_DIM",
    "KEYFRAME_STEP",
}
# Parameters that hold a unit: their defaults must be the imported constant, never a number.
UNIT_PARAMETERS = {
    "fps",
    "sample_rate",
    "samples_per_frame",
    "keyframe_step",
    "keyframe_stride",
    "nfeats",
    "input_dim",
}
# Numbers that can only mean a unit (48 kHz, its samples per frame, the body width).
UNIT_ONLY_NUMBERS = {units.SAMPLE_RATE, units.SAMPLES_PER_FRAME, units.BODY_DIM}


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_no_module_but_units_defines_a_unit():
    defined = []
    for path in SOURCES:
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id in UNIT_NAMES:
                        defined.append(f"{_relative(path)}:{node.lineno} {name.id}")
    assert defined == []


def _defaults(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """(name, default) of a function's parameters, or of a class-body field with a value."""
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return [(node.target.id, node.value)]
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return []
    args = node.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    with_default = positional[len(positional) - len(args.defaults) :]
    pairs = list(zip(with_default, args.defaults, strict=True))
    keyword = zip(args.kwonlyargs, args.kw_defaults, strict=True)
    return pairs + [(a.arg, d) for a, d in keyword if d is not None]


def test_no_unit_parameter_defaults_to_a_number():
    literal = [
        f"{_relative(path)}:{default.lineno} {name}={default.value}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        for name, default in _defaults(node)
        if name in UNIT_PARAMETERS and isinstance(default, ast.Constant)
    ]
    assert literal == []


def test_numbers_that_only_a_unit_can_mean_are_written_only_in_units():
    written = []
    for path in SOURCES:
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        for token in tokens:
            if token.type == tokenize.NUMBER and _number(token.string) in UNIT_ONLY_NUMBERS:
                written.append(f"{_relative(path)}:{token.start[0]} {token.string}")
    assert written == []


def _number(text: str) -> float | None:
    try:
        return float(ast.literal_eval(text))
    except (ValueError, TypeError):
        return None  # complex literals


def test_the_units_agree_with_each_other():
    assert units.SAMPLES_PER_FRAME * units.FPS == units.SAMPLE_RATE
    assert units.FPS % units.KEYFRAME_STRIDE == 0  # keyframes on whole seconds
