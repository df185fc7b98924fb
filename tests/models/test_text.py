"""Text encoders: MiniLM checked against sentence-transformers, batch independence, the cache, checksum refusal;
the learned encoder's shapes, vocabulary errors and gradients."""

from __future__ import annotations

import shutil

import pytest
import torch

from vidsynth.errors import UserError
from vidsynth.models.text import LearnedEncoder, MiniLMEncoder, build_text_encoder, minilm_folder

CAPTIONS = ["a red circle moves left", "a blue star moves up", "a large green triangle moves down-right slowly"]


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEncoder()


def test_minilm_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_folder()), device="cpu").encode(CAPTIONS, convert_to_tensor=True)
    ours = minilm(CAPTIONS)
    assert ours.shape == (3, 384) and minilm.checksum is not None
    torch.testing.assert_close(ours, reference.cpu(), atol=1e-5, rtol=0)


def test_minilm_embeddings_do_not_depend_on_the_batch_and_are_cached(minilm):
    minilm.cache.clear()
    alone = minilm(CAPTIONS[:1])
    minilm.cache.clear()
    together = minilm(CAPTIONS[::-1])
    assert torch.equal(alone[0], together[2])
    before = minilm.encoded
    again = minilm(CAPTIONS + CAPTIONS)
    assert minilm.encoded == before and torch.equal(again[:3], again[3:])


def test_minilm_refuses_weights_with_another_checksum(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(minilm_folder(), folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="refusing to load"):
        MiniLMEncoder(folder)


def test_learned_encoder_shapes_vocabulary_and_gradients():
    encoder = LearnedEncoder(["a", "red", "blue", "circle", "star", "moves", "left", "up"], dim=16)
    out = encoder(["a red circle moves left", "a blue star moves up"])
    assert out.shape == (2, 16)
    out.sum().backward()
    assert encoder.embed.weight.grad.abs().sum() > 0
    with pytest.raises(UserError, match="never saw \\(purple\\)"):
        encoder(["a purple circle"])
    rebuilt = build_text_encoder(encoder.config())
    rebuilt.load_state_dict(encoder.state_dict())
    assert torch.equal(rebuilt(["a red star"]), encoder(["a red star"]))
    with pytest.raises(UserError, match="not a text encoder"):
        build_text_encoder({"name": "clip"})
