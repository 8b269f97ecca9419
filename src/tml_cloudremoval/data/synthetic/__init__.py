"""Synthetic sample data: a small, seeded, *learnable* stand-in for SEN12MS-CR and a TML scene.

The project ships without real imagery; these modules make one so that every pipeline runs end
to end on a fresh checkout. :mod:`.spectra` (reflectance and backscatter tables),
:mod:`.ground` (land cover and reflectance), :mod:`.sar` (Sentinel-1), :mod:`.clouds` (clouds
and shadows), :mod:`.sample_folder` (writing a product folder atomically, with its manifest and
skip-if-up-to-date), :mod:`.sen12mscr_sample` and :mod:`.tml_scene` (the two products);
:mod:`.scale_tree`: a full-size SEN12MS-CR tree (real headers, tiny content) for scale tests.
"""
