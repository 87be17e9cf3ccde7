"""Orchestration for the chat gateway benchmark (see ../README.md)."""
