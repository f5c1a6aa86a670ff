"""The text `mixture build` prints: per phase and source the tokens, epochs and target vs realised weight,
then what the incremental build rebuilt and reused, and why."""

from __future__ import annotations

from training.mixture.build import BuildResult


def summary(result: BuildResult) -> str:
    m = result.manifest
    lines = [
        (
            f"mixture {m['name']} -> {result.output} ({result.seconds:.1f}s);"
            f" tokenizer {m['tokenizer']['how']},"
            f" vocab {m['tokenizer']['vocab_size']}, dtype {m['dtype']}"
        )
    ]
    for p in m["phases"]:
        lines.append(f"  {p['name']}: {p['tokens']:,} tokens in {len(p['shards'])} shard(s)")
        for s in p["sources"]:
            lines.append(
                f"    {s['name']:<18} {s['tokens']:>12,} tokens {s['epochs']:6.2f} ep"
                f"  target {s['target_weight']:.4f} realised {s['realised_weight']:.4f}"
                f"  heldout {s['heldout_documents']} docs"
            )
    lines.append("rebuilt: " + (", ".join(result.rebuilt) or "nothing"))
    lines.append("reused:  " + (", ".join(result.reused) or "nothing"))
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
