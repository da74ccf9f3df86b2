"""tplib: a reproduction harness for Yin et al., "Learning Transferrable Parameters for Long-tailed
Sequential User Behavior Modeling" (KDD 2020)."""

__version__ = "0.1.0"
