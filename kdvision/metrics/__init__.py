"""Evaluation metrics for every task."""
from kdvision.metrics.classification import accuracy
