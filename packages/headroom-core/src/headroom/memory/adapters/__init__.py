"""Concrete adapters for the ports in :mod:`headroom.memory.ports`.

Only :mod:`headroom.memory.factory` chooses among them; import a module directly to use one.
"""
