"""The model: a Phi-3-style decoder built from a transformers `Phi3Config` (no hub downloads, random init).

Presets fix the shape; the vocabulary comes from the mixture's tokenizer (padded up to a multiple of 64 so the
embedding and LM-head matmuls hit fast GPU tile sizes; the padding ids are never produced by the tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, Phi3Config, Phi3ForCausalLM
from transformers.masking_utils import AttentionMaskInterface

# Packed pretraining batches are full causal windows with no padding, so attention needs no mask tensor:
# SDPA's is_causal path (flash attention on H100). transformers' own "sdpa" implementation materialises a
# (B, 1, T, T) mask under torch.compile with torch < 2.14 (see masking_utils._ignore_causal_mask_sdpa), which
# rules the flash kernel out; this implementation never builds the mask. Training and full-window eval only:
# it refuses a query shorter than the keys (KV-cache decoding), where is_causal's alignment would be wrong.
CAUSAL_SDPA = "sdpa_causal"


def _causal_sdpa_attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None, **kwargs
):
    if query.shape[2] != key.shape[2]:
        raise ValueError(
            f"attn_implementation {CAUSAL_SDPA!r} is for full-window training (query length "
            f"{query.shape[2]} != key length {key.shape[2]}); load the model with 'sdpa' to generate"
        )
    out = F.scaled_dot_product_attention(
        query,
        key,
        value,
        dropout_p=dropout,
        scale=scaling,
        is_causal=True,
        enable_gqa=query.shape[1] != key.shape[1],
    )
    return out.transpose(1, 2).contiguous(), None


def _no_mask(*args, **kwargs) -> None:
    return None


AttentionInterface.register(CAUSAL_SDPA, _causal_sdpa_attention)
AttentionMaskInterface.register(CAUSAL_SDPA, _no_mask)


@dataclass(frozen=True)
class Preset:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int  # Phi-3's MLP is gated: gate_up_proj is hidden -> 2 * intermediate


# Shapes: 125m/350m match GPT-3 small/medium widths; phi3-mini is the published 3.8B shape (32 x 3072, 32
# heads).
PRESETS: dict[str, Preset] = {
    "tiny": Preset(hidden=64, layers=2, heads=4, kv_heads=4, intermediate=192),
    "125m": Preset(hidden=768, layers=12, heads=12, kv_heads=12, intermediate=2048),
    "350m": Preset(hidden=1024, layers=24, heads=16, kv_heads=16, intermediate=2816),
    "1b": Preset(hidden=2048, layers=18, heads=16, kv_heads=16, intermediate=5632),
    "phi3-mini": Preset(hidden=3072, layers=32, heads=32, kv_heads=32, intermediate=8192),
}

VOCAB_MULTIPLE = 64


def padded_vocab(vocab_size: int) -> int:
    return -(-vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def phi3_config(
    preset: str, vocab_size: int, seq_len: int, eos_id: int, attn_implementation: str = CAUSAL_SDPA
) -> Phi3Config:
    if preset not in PRESETS:
        raise ValueError(f"model preset {preset!r} unknown; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    config = Phi3Config(
        vocab_size=padded_vocab(vocab_size),
        hidden_size=p.hidden,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        intermediate_size=p.intermediate,
        max_position_embeddings=seq_len,
        original_max_position_embeddings=seq_len,
        # the mixture's EOS separates documents; there is no padding in packed training
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        use_cache=False,
        tie_word_embeddings=False,
    )
    config._attn_implementation = attn_implementation
    return config


def build_model(config: Phi3Config) -> Phi3ForCausalLM:
    """Random init from the config (deterministic under torch.manual_seed)."""
    return Phi3ForCausalLM(config)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: Phi3Config, seq_len: int, include_embedding: bool = True) -> float:
    """Training FLOPs per token: 6*N for the weight matmuls (forward + backward) plus 12*L*d*T for the
    attention scores and weighted sum (PaLM appendix B; causal masking not discounted).

    `include_embedding=True` counts N as all parameters, the convention of the reference figures in the
    pretraining issue; the input embedding is a lookup, so False is the stricter count."""
    d, layers, inter, vocab = (
        config.hidden_size,
        config.num_hidden_layers,
        config.intermediate_size,
        config.vocab_size,
    )
    kv_dim = d * config.num_key_value_heads // config.num_attention_heads
    per_layer = (
        d * (d + 2 * kv_dim) + d * d + d * 2 * inter + inter * d + 2 * d
    )  # qkv, o, gate_up, down, norms
    n = (
        layers * per_layer + d + vocab * d + (vocab * d if include_embedding else 0)
    )  # final norm, lm_head, embed
    return 6.0 * n + 12.0 * layers * d * seq_len
