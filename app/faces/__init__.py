"""Face detection, embeddings and nearest-neighbour assignment."""
