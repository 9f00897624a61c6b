"""Reproduce and extend "CausalLM is not optimal for in-context learning" (Ding et al., ICLR 2024)."""

__version__ = "0.1.0"
