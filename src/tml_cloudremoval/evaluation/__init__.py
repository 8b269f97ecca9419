"""How good a trained model is on the test split, against the cloudy-input baseline.

- ``metrics``: MAE, RMSE, PSNR, SSIM, SAM on reflectance, pooled over all/covered/clear pixels
- ``evaluate``: streaming evaluation of a patch store -> metrics.json layout + per-patch table
- ``protocol``: the published protocol: per-image means and std over patches, by cloud cover
- ``literature``: the published SEN12MS-CR results, this run next to them, what differs
- ``report``: evaluation_report.md (pooled, per-image, binned and literature tables)
- ``examples``: which patches to show and what the example figure shows of each
- ``plots``: the report's figures
- ``config``: validated ``evaluation:`` parameters
"""
