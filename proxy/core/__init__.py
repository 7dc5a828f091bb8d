"""The vocabulary every stage shares: the error root and the response flags.

Nothing here does I/O or imports another ``proxy`` package.
"""
