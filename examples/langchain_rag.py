"""A small offline RAG chain with LangChain on Llama 2 chat.

A BM25 retriever over a handful of in-memory documents finds the passages for a question; a
prompt puts them in front of the model, which answers from them. No downloads, no vector store:

    python examples/langchain_rag.py                    # embedded local model
    python examples/langchain_rag.py --backend remote   # Workers AI
"""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from collections.abc import Sequence

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough

from langchain_cf_llama2 import ChatCloudflareLlama2

DOCUMENTS = [
    Document(
        page_content="Workers AI runs machine-learning models on Cloudflare's global network. "
        "Models are called over a REST API with an account id and an API token.",
        metadata={"source": "workers-ai.md"},
    ),
    Document(
        page_content="Llama 2 7B chat int8 is an 8-bit quantised version of Meta's Llama 2 chat "
        "model. Its context window is 4096 tokens and it answers at most 256 tokens by default.",
        metadata={"source": "llama-2-7b-chat-int8.md"},
    ),
    Document(
        page_content="bitsandbytes provides 8-bit matrix multiplication for PyTorch, which "
        "roughly halves the memory a model needs compared with 16-bit weights.",
        metadata={"source": "bitsandbytes.md"},
    ),
    Document(
        page_content="The Eiffel Tower in Paris is 330 metres tall and was completed in 1889.",
        metadata={"source": "paris.md"},
    ),
]

_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


class BM25Retriever(BaseRetriever):
    """Okapi BM25 over an in-memory list of documents."""

    documents: list[Document]
    k: int = 2
    k1: float = 1.5
    b: float = 0.75

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        docs = [tokenize(d.page_content) for d in self.documents]
        avg_len = sum(len(d) for d in docs) / max(len(docs), 1)
        df = Counter(term for d in docs for term in set(d))
        n = len(docs)
        scores: list[float] = []
        for tokens in docs:
            tf = Counter(tokens)
            score = 0.0
            for term in set(tokenize(query)):
                if term not in tf:
                    continue
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                norm = tf[term] + self.k1 * (1 - self.b + self.b * len(tokens) / avg_len)
                score += idf * tf[term] * (self.k1 + 1) / norm
            scores.append(score)
        ranked = sorted(range(n), key=lambda i: scores[i], reverse=True)
        return [self.documents[i] for i in ranked[: self.k] if scores[i] > 0]


def format_docs(docs: Sequence[Document]) -> str:
    """The retrieved passages, one per line, with their source."""
    return "\n".join(f"[{d.metadata['source']}] {d.page_content}" for d in docs)


PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question in one sentence using only the context below.\n\n"
            "Context:\n{context}",
        ),
        ("human", "{question}"),
    ]
)


def build_chain(llm: ChatCloudflareLlama2, retriever: BaseRetriever) -> Runnable[str, str]:
    """question -> retrieve -> prompt -> model -> answer text."""
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local", choices=["local", "remote"])
    parser.add_argument("--question", default="How tall is the Eiffel Tower?")
    args = parser.parse_args(argv)

    retriever = BM25Retriever(documents=DOCUMENTS, k=2)
    llm = ChatCloudflareLlama2(backend=args.backend, temperature=0, max_tokens=64)
    chain = build_chain(llm, retriever)
    for doc in retriever.invoke(args.question):
        print(f"retrieved: {doc.metadata['source']}")
    print("answer:", chain.invoke(args.question).strip())


if __name__ == "__main__":
    main()
