"""The catalog's vq_wav2vec: upstream's frozen extractor read from a fairseq checkpoint, or None."""

from __future__ import annotations

import pytest
import torch
from kedro.io import DatasetError

from audio2photoreal_pipelines.datasets import VqWav2VecDataset
from audio2photoreal_pipelines.models.audio import LogMelFeatures, VqWav2VecFeatures
from audio2photoreal_pipelines.parameters import AudioFeatureParams
from tests.models.test_audio import SMALL_CONV_LAYERS, fairseq_checkpoint


def test_no_checkpoint_loads_none_and_the_features_are_log_mel():
    assert VqWav2VecDataset(filepath=None).load() is None
    params = AudioFeatureParams(n_mels=8, feature_dim=16)
    assert isinstance(params.extractor(None), LogMelFeatures)


def test_a_checkpoint_loads_its_extractor_with_the_checkpoints_weights(tmp_path):
    checkpoint = fairseq_checkpoint(SMALL_CONV_LAYERS)
    path = tmp_path / "vq-wav2vec.pt"
    torch.save(checkpoint, path)
    extractor = VqWav2VecDataset(filepath=str(path)).load()
    assert isinstance(extractor, VqWav2VecFeatures) and extractor.feature_dim == 8
    weight = checkpoint["model"]["feature_extractor.conv_layers.0.0.weight"]
    assert torch.equal(extractor.conv_layers[0][0].weight, weight)


def test_a_bad_checkpoint_is_named(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DatasetError, match=r"junk\.pt: cannot"):
        VqWav2VecDataset(filepath=str(path)).load()


def test_the_parameters_and_the_catalog_must_name_the_same_front_end(tmp_path):
    path = tmp_path / "vq-wav2vec.pt"
    torch.save(fairseq_checkpoint(SMALL_CONV_LAYERS), path)
    log_mel = AudioFeatureParams(n_mels=8, feature_dim=16)
    with pytest.raises(ValueError, match="set the checkpoint once, as vq_wav2vec_checkpoint"):
        log_mel.extractor(VqWav2VecDataset(filepath=str(path)).load())
    upstream = AudioFeatureParams(vq_wav2vec_checkpoint=str(path), feature_dim=1024)
    with pytest.raises(ValueError, match="catalog's vq_wav2vec is empty"):
        upstream.extractor(None)
