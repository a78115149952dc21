"""The paper's own numbers, to be shown beside ours (never used to compute anything).

Table 4 comes from the paper's text (pixel AUROC, MVTec-AD mean, in %). The main-result
means are as reported in the paper; its per-category values are not reproduced here.
"""

from __future__ import annotations

TABLE4_PIXEL_AUROC: dict[str, dict[str, float]] = {
    "attention_query": {"cnn": 94.4, "no_attention": 94.8, "no_query": 94.2, "adtr": 97.2},
    "target": {"pixels": 91.3, "features": 97.2},
    "backbone": {"resnet18": 95.3, "resnet34": 95.7, "efficientnet_b0": 96.4,
                 "efficientnet_b4": 97.2},
    "scales": {"last_layer": 96.0, "multi_scale": 97.2},
}

#: MVTec-AD means as reported (image and pixel AUROC, %); per-category values not verified.
MAIN_MVTEC: dict[str, dict[str, float]] = {
    "ADTR": {"image_auroc": 96.4, "pixel_auroc": 97.2},
    "ADTR+": {"image_auroc": 96.9, "pixel_auroc": 97.5},
}

#: CIFAR-10 one-class image AUROC means as reported (%).
MAIN_CIFAR10: dict[str, float] = {"ADTR": 94.7, "ADTR+": 96.1}

#: Fig. 5 has no number: the paper shows the t-SNE plot only.
FIG5_SAMPLES = 600
