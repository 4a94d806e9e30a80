"""Neural networks only: generators, discriminators, classifiers and GAN losses.

Every network takes explicit constructor arguments; nothing here reads params.
"""
