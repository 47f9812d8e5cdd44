"""The pieces of bench/compare, one concern per module."""
