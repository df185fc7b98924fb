import pytest
import torch
import torch.nn.functional as F

from vidsynth.metrics.resize import interpolation_matrix, resize_frames


def test_tf1_bilinear_matches_a_hand_computed_case():
    # TF1 resize_bilinear (align_corners=False, half_pixel_centers=False): output pixel i reads source i * in/out,
    # so 2 -> 4 reads positions 0, 0.5, 1, 1.5 and clamps the right neighbour at the border
    image = torch.tensor([[0.0, 10.0], [20.0, 30.0]])
    expected = torch.tensor([[0.0, 5.0, 10.0, 10.0],
                             [10.0, 15.0, 20.0, 20.0],
                             [20.0, 25.0, 30.0, 30.0],
                             [20.0, 25.0, 30.0, 30.0]])
    assert torch.equal(resize_frames(image, 4, "tf1"), expected)
    # shrinking 3 -> 2 reads positions 0 and 1.5: no antialias, the last column is never averaged in fully
    row = torch.tensor([[0.0, 6.0, 12.0]]).expand(3, 3)
    assert torch.allclose(resize_frames(row, 2, "tf1")[0], torch.tensor([0.0, 9.0]))


@pytest.mark.parametrize("size_in,size_out", [(32, 224), (64, 224), (256, 224), (7, 5)])
def test_torch_variant_equals_f_interpolate(size_in, size_out):
    x = torch.rand(2, 3, size_in, size_in, generator=torch.Generator().manual_seed(0)) * 255
    reference = F.interpolate(x, size=(size_out, size_out), mode="bilinear", align_corners=False, antialias=False)
    # torch computes source coordinates in float32, we in float64: apart by < 0.01 on a 0-255 scale
    assert torch.allclose(resize_frames(x, size_out, "torch"), reference, atol=1e-2)


def test_rows_are_convex_weights_and_same_size_is_identity():
    for method in ("tf1", "torch"):
        m = interpolation_matrix(37, 224, method)
        assert torch.allclose(m.sum(1), torch.ones(224, dtype=torch.float64)) and (m >= 0).all()
        assert torch.equal(interpolation_matrix(16, 16, method), torch.eye(16, dtype=torch.float64))
    with pytest.raises(ValueError, match="tf1"):
        interpolation_matrix(4, 4, "nearest")
