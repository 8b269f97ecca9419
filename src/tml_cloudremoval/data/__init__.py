"""SEN12MS-CR in, training-ready patches out: the data path, one duty per module.

- ``layout``: the one definition of the SEN12MS-CR file layout (official and flattened)
- ``discovery``: finding triplets under a root or in a DSen2-CR file list -> the triplet table
- ``splits``: the scene split (seeded fractions, or the file list's own)
- ``checks``: every file checked from its header and pixels; the validation report; bad-file policy
- ``content``: the pixel and layout faults of one file (all-NaN/constant bands, physical range)
- ``triplets``: reading a triplet and preparing one sample (TML bands, SAR at 40 m, mask)
- ``store_group``: the train/val/test stores put in place together or not at all
- ``cloud_mask``: the cloud/shadow detector of the DSen2-CR data path
- ``patch_store``: the training-ready store (memory-mapped arrays, written atomically)
- ``sampling``: the TF-free epoch plans (order, crops, flips, rotations) and the crop reader
- ``input_pipeline``: tf.data over a store (crops, flips, epochs, batches)
- ``synthetic``: the seeded sample SEN12MS-CR tree and TML scene
- ``config``: validated ``data:`` and ``sample_data:`` parameters; ``errors``: DataError
"""
