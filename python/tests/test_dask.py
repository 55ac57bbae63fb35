"""gbml_testbed.dask: row tiles computed by the Rust core on the workers of a 2-process
LocalCluster are bit-identical to the single-machine Gram matrix, and write to Zarr."""

import numpy as np
import pytest

import gbml_testbed as gt

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
gdask = pytest.importorskip("gbml_testbed.dask")

ARCH = dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def xs():
    rng = np.random.default_rng(7)
    return rng.standard_normal((53, 6)), rng.standard_normal((19, 6))


def test_ntk_on_a_2_worker_cluster_is_bitwise_the_local_result(client, xs):
    x, _ = xs
    lazy = gdask.ntk(x, chunks=16, **ARCH)
    assert lazy.chunks == ((16, 16, 16, 5), (53,))
    out = lazy.compute()
    assert out.tobytes() == gt.ntk(x, **ARCH).tobytes()
    # Both worker processes took part.
    assert len(client.scheduler_info()["workers"]) == 2


def test_nngp_cross_kernel_on_the_cluster(client, xs):
    x, x2 = xs
    out = gdask.nngp(x, x2, chunks=7, **ARCH).compute()
    assert out.tobytes() == gt.nngp(x, x2, **ARCH).tobytes()


@pytest.mark.parametrize("chunks", [1, 5, 53, 100])
def test_any_chunking_gives_the_same_bits(xs, chunks):
    x, _ = xs
    out = gdask.ntk(x, chunks=chunks, **ARCH).compute(scheduler="threads")
    assert out.tobytes() == gt.ntk(x, **ARCH).tobytes()


def test_written_to_zarr_and_read_back(client, xs, tmp_path):
    pytest.importorskip("zarr")
    x, _ = xs
    gdask.ntk(x, chunks=16, **ARCH).to_zarr(str(tmp_path / "ntk.zarr"))
    back = da.from_zarr(str(tmp_path / "ntk.zarr")).compute()
    assert back.tobytes() == gt.ntk(x, **ARCH).tobytes()


def test_bad_input_raises_when_the_graph_is_built(xs):
    x, _ = xs
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(gt.NonFiniteError, match=r"at \[2, 1\]"):
        gdask.ntk(bad, chunks=16, **ARCH)
    with pytest.raises(gt.InvalidParameterError, match="chunks"):
        gdask.ntk(x, chunks=0, **ARCH)
    with pytest.raises(gt.InvalidParameterError, match="sigma_w"):
        gdask.ntk(x, chunks=4, **{**ARCH, "sigma_w": -1.0})


def test_mnk_phi_on_the_cluster_is_bitwise_the_local_phi(client):
    rng = np.random.default_rng(11)
    n_tasks, m, n, d, k = 5, 3, 4, 4, 2
    x = rng.standard_normal((n_tasks * (m + n), d))
    y = rng.standard_normal((n_tasks * (m + n), k))
    kw = dict(support=m, query=n, depth=2, activation="relu", sigma_w=1.4, sigma_b=0.3, inner_time=0.7)
    local = gt.mnk(x, y, **kw)
    for chunks in (3, 4, 20):
        lazy = gdask.mnk(x, y, chunks=chunks, **kw)
        assert lazy.shape == (n_tasks * n, n_tasks * n)
        assert lazy.compute().tobytes() == local.tobytes(), chunks
    with pytest.raises(gt.ShapeError, match="multiple of support"):
        gdask.mnk(x[:-1], y[:-1], chunks=4, **kw)


def test_conv_layers_on_the_cluster_are_bitwise_the_local_kernels(client):
    # layers= (conv nets on NHWC images): the row tiles are conv::kernels_rows slices.
    imgs = np.random.default_rng(5).standard_normal((7, 5, 5, 2))
    arch = dict(layers="conv:3:same,relu,conv:3:valid,relu,gap,dense", sigma_w=1.4, sigma_b=0.1)
    for kind, local in (("ntk", gt.ntk(imgs, **arch)), ("nngp", gt.nngp(imgs, **arch))):
        for chunks in (2, 3, 7):
            lazy = getattr(gdask, kind)(imgs, chunks=chunks, **arch)
            assert lazy.shape == (7, 7)
            assert lazy.compute().tobytes() == local.tobytes(), (kind, chunks)
    with pytest.raises(gt.InvalidParameterError):
        gdask.ntk(imgs, chunks=2, layers="conv:3:same,bogus,gap,dense", sigma_w=1.4, sigma_b=0.1)
