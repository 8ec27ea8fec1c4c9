"""Small helpers with no project imports of their own (the bottom layer: anything may import them)."""
