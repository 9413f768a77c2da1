"""Each model's parameter block (``params:<model>.model``), and the model built from it.

A block has one field per keyword of the model's constructor, with the constructor's annotation
and default, so the constructor stays the one home of each setting and no setting can be parsed
and then ignored (as several of upstream's are, docs/upstream.md §10.3). The block is checked by
building the model on the meta device, which allocates nothing: a width that does not split into
the heads, or any other value the constructor refuses, fails before the first node.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

import torch
from pydantic import StrictInt, create_model, model_validator
from torch import nn

from audio2photoreal_pipelines.models.audio import AudioEncoder
from audio2photoreal_pipelines.models.denoisers import FaceDenoiser, PoseDenoiser
from audio2photoreal_pipelines.models.guide import GuideTransformer
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.parameter_block import ParameterBlock, ParameterError, Switch


class ModelParams(ParameterBlock):
    """A model's constructor keywords; ``build()`` makes the model."""

    module: ClassVar[type[nn.Module]]

    @model_validator(mode="after")
    def _constructor_accepts(self) -> ModelParams:
        with torch.device("meta"):
            try:
                self.build()
            except (ValueError, TypeError, RuntimeError, AssertionError) as err:
                raise ValueError(
                    f"{self.module.__name__} refuses these parameters: {err}"
                ) from None
        return self

    def build(self, **fixed: Any) -> nn.Module:
        """The model, with ``fixed`` keywords overriding the block's."""
        return self.module(**{**self.model_dump(), **fixed})


def _field_type(annotation: Any) -> Any:
    """The constructor's annotation, with ints strict and bools true or false only."""
    if annotation is int:
        return StrictInt
    if annotation is bool:
        return Switch
    if get_origin(annotation) in (Union, type(int | None)):
        return Union[tuple(_field_type(arg) for arg in get_args(annotation))]  # noqa: UP007
    return annotation


def constructor_params(
    module: type[nn.Module],
    *,
    exclude: tuple[str, ...] = (),
    nested: Mapping[str, Any] | None = None,
    check: bool = True,
) -> type[ParameterBlock]:
    """A parameter block with one field per keyword of ``module``'s constructor.

    ``exclude`` drops keywords the caller supplies; ``nested`` gives a keyword a block of its own
    (the audio encoder's options). ``check`` builds the model on the meta device to validate.
    """
    hints = get_type_hints(module.__init__)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(module).parameters.items():
        if name in exclude:
            continue
        annotation = (nested or {}).get(name) or _field_type(hints.get(name, Any))
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (annotation, default)
    block = create_model(
        f"{module.__name__}Params",
        __base__=ModelParams if check else ParameterBlock,
        __doc__=f"Parameters of {module.__name__} (its constructor's keywords).",
        **fields,
    )
    block.module = module
    return block


AudioEncoderParams = constructor_params(AudioEncoder, exclude=("in_dim", "out_dim"), check=False)
_AUDIO = {"audio_encoder": AudioEncoderParams | None}
# The keyframe stride is the data layout's (units.py), which the windows share: not a knob. The
# models store it, and sampling checks that the three agree.
_STRIDE = ("keyframe_stride",)
VQParams = constructor_params(VQVAE, exclude=_STRIDE)
GuideParams = constructor_params(GuideTransformer, exclude=_STRIDE, nested=_AUDIO)
FaceParams = constructor_params(FaceDenoiser, nested=_AUDIO)
PoseParams = constructor_params(PoseDenoiser, exclude=_STRIDE, nested=_AUDIO)


def build_vq(params: Mapping[str, Any] | ParameterBlock) -> VQVAE:
    """The VQ-VAE of a ``vq.model`` block (a mapping is validated first)."""
    return VQParams.model_validate(params).build()


def build_face_denoiser(params: Mapping[str, Any] | ParameterBlock) -> FaceDenoiser:
    """The face denoiser of a ``face.model`` block (a mapping is validated first)."""
    return FaceParams.model_validate(params).build()


def build_pose_denoiser(params: Mapping[str, Any] | ParameterBlock) -> PoseDenoiser:
    """The body denoiser of a ``pose.model`` block (a mapping is validated first)."""
    return PoseParams.model_validate(params).build()


def build_guide(
    params: Mapping[str, Any] | ParameterBlock, *, vq: VQVAE | None = None
) -> GuideTransformer:
    """The guide of a ``guide.model`` block. With a trained ``vq``, codebook_size and
    num_quantizers are the VQ's, and must agree with it where the block states them."""
    block = GuideParams.model_validate(params)
    if vq is None:
        return block.build()
    tokens = {"codebook_size": vq.codebook_size, "num_quantizers": vq.num_quantizers}
    for key, value in tokens.items():
        if key in block.model_fields_set and getattr(block, key) != value:
            raise ParameterError(f"guide.model.{key}: {getattr(block, key)} but the VQ has {value}")
    return block.build(**tokens)
