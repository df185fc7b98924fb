"""Video metrics: FVD/KVD on I3D features (fvd.py, kvd.py, frechet.py, i3d.py), PSNR/SSIM (psnr_ssim.py)."""
