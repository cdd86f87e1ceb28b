"""POST /api/v1/tweet through the gateway: wrk at the fixed concurrency, each request
by another author of a sample (the rate limit is per user, as for real clients)."""

from __future__ import annotations

import json

import numpy as np

from bench import loadgen
from bench.config import Config
from bench.graph import Graph


def run(cfg: Config, graph: Graph, rng: np.random.Generator) -> loadgen.Result:
    authors = rng.choice(graph.n, size=min(cfg.sample, graph.n), replace=False)
    lines = []
    for i, a in enumerate(authors.tolist()):
        body = json.dumps({"text": graph.texts[i % len(graph.texts)]}, ensure_ascii=False)
        lines.append(f"{graph.user_ids[a]}\t/api/v1/tweet\t{body}")
    return loadgen.run(cfg, cfg.gateway, lines, method="POST", name="writes")
