"""tml_cloudremoval: DSen2-CR cloud removal retrained for the TML band set."""

__version__ = "0.1.0"
