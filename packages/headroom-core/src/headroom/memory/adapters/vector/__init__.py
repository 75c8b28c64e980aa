"""Vector indexes holding ids only: FAISS (flat/HNSW) and a numpy fallback."""
