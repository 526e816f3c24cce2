"""Finance papers: stock-movement prediction from posts and prices (mman)."""
