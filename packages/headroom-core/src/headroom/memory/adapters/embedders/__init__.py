"""Embedders: sentence-transformers, ONNX int8, and OpenAI/Ollama over HTTP."""
