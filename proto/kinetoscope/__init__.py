"""kinetoscope: see what video ConvNets have learned."""

__version__ = "0.1.0"
