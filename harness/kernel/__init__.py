"""Kernels: recipes, Kconfig, builds (from Debian's source, a tarball, a
user's tree or a git commit), the Debian packages, the initramfs, and a
user's own Image."""
