"""Video metrics: FVD/KVD on I3D features (fvd.py, kvd.py, frechet.py, resize.py; the detector in i3d.py, its
weights checked and unpickled without code in weights.py), PSNR/SSIM (psnr_ssim.py); evaluate.py runs protocols."""
