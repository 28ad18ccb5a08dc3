"""CLIP image/text embeddings for smart search and duplicate detection (Immich's model layout)."""
