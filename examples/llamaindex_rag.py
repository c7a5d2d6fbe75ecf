"""Offline RAG with LlamaIndex: a BM25 retriever over a few documents, answered by the local model.

No embedding model is needed: the retriever scores nodes with BM25 over their words, so nothing
is downloaded and the example runs on a fresh machine::

    python examples/llamaindex_rag.py
    python examples/llamaindex_rag.py --question "How long is the Lumen Bridge?"
    python examples/llamaindex_rag.py --backend remote   # Workers AI (needs credentials)
"""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle

from llamaindex_cf_llama2 import CloudflareLlama2

DOCUMENTS = [
    Document(
        text="The Lumen Bridge in Port Vell was opened in 1998. It is 740 metres long and "
        "carries trams and bicycles, but no cars.",
        metadata={"title": "Lumen Bridge"},
    ),
    Document(
        text="The Port Vell aquarium keeps 42 species of octopus. Its night tour starts at "
        "9 pm every Friday.",
        metadata={"title": "Aquarium"},
    ),
    Document(
        text="Port Vell's old lighthouse is painted red and white. Its lamp was replaced by a "
        "LED lamp in 2015 and can be seen 30 km out at sea.",
        metadata={"title": "Lighthouse"},
    ),
]

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case word tokens."""
    return _WORD.findall(text.lower())


class BM25Retriever(BaseRetriever):
    """Okapi BM25 over node text: a keyword retriever that needs no model."""

    def __init__(
        self, nodes: list[BaseNode], top_k: int = 2, k1: float = 1.5, b: float = 0.75
    ) -> None:
        super().__init__()
        self._nodes = nodes
        self._top_k, self._k1, self._b = top_k, k1, b
        self._tf = [Counter(words(n.get_content())) for n in nodes]
        self._len = [sum(tf.values()) for tf in self._tf]
        self._avg = sum(self._len) / max(len(nodes), 1)
        df = Counter(w for tf in self._tf for w in tf)
        n = len(nodes)
        self._idf = {w: math.log(1 + (n - d + 0.5) / (d + 0.5)) for w, d in df.items()}

    def _score(self, i: int, query: list[str]) -> float:
        tf, length = self._tf[i], self._len[i]
        score = 0.0
        for w in query:
            f = tf.get(w, 0)
            if f:
                norm = f + self._k1 * (1 - self._b + self._b * length / self._avg)
                score += self._idf[w] * f * (self._k1 + 1) / norm
        return score

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = words(query_bundle.query_str)
        scored = [(self._score(i, query), i) for i in range(len(self._nodes))]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [
            NodeWithScore(node=self._nodes[i], score=s) for s, i in scored[: self._top_k] if s > 0
        ]


def build_query_engine(backend: str = "local") -> RetrieverQueryEngine:
    """A query engine over ``DOCUMENTS``: BM25 retrieval, answers from ``CloudflareLlama2``."""
    nodes = SentenceSplitter(chunk_size=128, chunk_overlap=0).get_nodes_from_documents(DOCUMENTS)
    llm = CloudflareLlama2(backend=backend, temperature=0, max_tokens=64)
    return RetrieverQueryEngine.from_args(BM25Retriever(nodes, top_k=1), llm=llm)


def main(backend: str, question: str) -> str:
    engine = build_query_engine(backend)
    response = engine.query(question)
    for source in response.source_nodes:
        print(f"[source: {source.node.metadata['title']}, score {source.score:.2f}]")
    print(f"Q: {question}\nA: {response}")
    return str(response)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "remote"], default="local")
    parser.add_argument("--question", default="When was the Lumen Bridge opened?")
    args = parser.parse_args()
    main(args.backend, args.question)
