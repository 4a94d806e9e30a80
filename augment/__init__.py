"""domain-augment library: data contract, GAN training, synthesis, mixing, classifiers, metrics.

Nothing here imports DVC or Prefect: every capability is a plain function.
"""
