"""DLMS/COSEM in the domain: an A-XDR codec and the per-model decoding of load profiles."""
