"""Stop sequences applied to streamed text on every backend.

CONTRACT (being implemented; signatures are fixed, other modules code against them):

* ``class StopFilter(stop: Sequence[str])`` with ``feed(text: str) -> str`` (text safe to emit;
  holds back a possible stop prefix), ``stopped: bool`` (a stop sequence was seen; drop the
  rest) and ``flush() -> str`` (the held-back text at the end of the stream).
"""
