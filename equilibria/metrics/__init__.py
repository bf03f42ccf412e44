"""Evaluation: Frechet distances, feature extractors, sample-quality scores, mode coverage and
discriminator diagnostics."""

from equilibria.metrics.classifier import ClassifierFeatures, ClassifierSettings, classifier_extractor, train_classifier
from equilibria.metrics.diagnostics import (advas_quantity, fake_gradient_norm, output_drift, output_statistics,
                                            trainer_advas_quantity)
from equilibria.metrics.evaluation import applicable_metrics, default_extractor, evaluate, evaluator
from equilibria.metrics.features import (ClassifierExtractor, FeatureExtractor, InceptionFeatures, extract_features,
                                         fid_inception)
from equilibria.metrics.frechet import Statistics, feature_statistics, frechet_distance
from equilibria.metrics.inception import FIDInceptionV3, InceptionOutput, preprocess
from equilibria.metrics.modes import mixture_coverage, stacked_mnist_coverage
from equilibria.metrics.scores import inception_score, kernel_inception_distance, precision_recall
from equilibria.metrics.weights import FID_WEIGHTS_URLS, download_fid_weights, fid_weights_path, load_fid_inception

__all__ = [
    "FID_WEIGHTS_URLS", "ClassifierExtractor", "ClassifierFeatures", "ClassifierSettings", "FIDInceptionV3",
    "FeatureExtractor", "InceptionFeatures", "InceptionOutput", "Statistics", "advas_quantity", "applicable_metrics",
    "classifier_extractor", "default_extractor", "download_fid_weights", "evaluate", "evaluator", "extract_features",
    "fake_gradient_norm", "feature_statistics", "fid_inception", "fid_weights_path", "frechet_distance",
    "inception_score", "kernel_inception_distance", "load_fid_inception", "mixture_coverage", "output_drift",
    "output_statistics", "precision_recall", "preprocess", "stacked_mnist_coverage", "train_classifier",
    "trainer_advas_quantity",
]
