"""Video metrics: FVD/KVD on I3D features (fvd.py, kvd.py, frechet.py, resize.py; the detector in i3d.py, its
weights checked and unpickled without code in weights.py), PSNR/SSIM (psnr_ssim.py); evaluate.py runs protocols."""

# the functions, as `vidsynth.metrics.fvd(real, fake)`: these names shadow the submodules of the same name on the
# package, which stay importable as `from vidsynth.metrics.fvd import ...`
from vidsynth.metrics.fvd import fvd, kvd
from vidsynth.metrics.psnr_ssim import psnr, ssim

__all__ = ["fvd", "kvd", "psnr", "ssim"]
