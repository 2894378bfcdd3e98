"""AI providers (LLMs, embeddings), prompts and text metrics."""
