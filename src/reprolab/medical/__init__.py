"""MONAI-based core of the medical papers (``planes``, ``girnet``, ``mmcbm``).

What MONAI, nibabel and pydicom already do (loading NIfTI / DICOM, dictionary transforms,
datasets, U-Nets, losses, Dice and surface metrics, warps) is used from them; this package
holds only what the papers add: demo anatomy, imaging-plane geometry, registration
helpers, and the papers' own modules. Training loops keep the contract of
:func:`reprolab.core.loop.run_epochs` (seeded, resumable, JSONL metrics).

Imports point down only: ``medical`` may import ``reprolab.core``, ``reprolab.data`` and
``reprolab.report``; nothing outside a paper's own modules imports a paper module.
"""
