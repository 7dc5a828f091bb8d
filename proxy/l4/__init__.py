"""The L4 stage: capture listeners, SO_ORIGINAL_DST, protocol detection, the opaque relay.

A connection enters here (``listener``), is told where it was going (``origdst``)
and what it speaks (``detect``), and is either relayed byte for byte (``relay``) or
handed up to the HTTP engine.
"""
