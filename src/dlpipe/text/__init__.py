"""Text pipeline: rules, spaCy tokenization, vocabulary, id corpora, LM batching and samplers."""
