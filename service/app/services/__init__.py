"""Business logic. Nothing in here imports FastAPI."""
