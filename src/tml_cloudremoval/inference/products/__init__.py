"""Readers of the optical products users have: a Sentinel-2 L1C ``.SAFE`` (folder or zip), the
TML layout folder, and GeoTIFF stacks; each gives the 10 TML bands on the 10 m grid."""
