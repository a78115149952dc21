"""ADTR: Anomaly Detection Transformer with feature reconstruction (You et al., ICONIP 2022)."""

__version__ = "0.1.0"
