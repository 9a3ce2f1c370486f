"""ganpu: an open GAN training accelerator in Amaranth HDL."""

__version__ = "0.1.0"
