"""The networks and their losses.

- ``dsen2cr``: DSen2-CR for the 10 TML bands + SAR at 40 m, stock Keras layers only
- ``receptive_field``: how far a pixel's influence reaches (tile overlaps follow from it)
- ``losses``: CARL (cloud-adaptive regularised loss) and L1, per sample
"""
