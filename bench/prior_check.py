"""Prior samples against reconstructions, on a job's latest checkpoint (issue 19), with the `digits` feature net:

    python bench/prior_check.py --job-dir JOB [--num-samples 1000]

Prints one JSON object: for prior samples through the prior map (`prior`, what `embeddings` serves) and straight
from N(0, I) without it (`raw_prior`, what genart served before the map): the fraction the digits net classifies
with confidence >= 0.9, and kid_digits / fd_digits to the val images; the same distances for the val images'
reconstructions (`reconstructions`); and prior / reconstruction ratios of both distances (null where the
reconstructions' distance is below 1e-3, as an unbiased KID near 0 can be).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from trainer import export  # noqa: E402
from trainer.evaluate import features, metrics  # noqa: E402
from trainer.models import model_class  # noqa: E402

CONFIDENCE = 0.9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--num-samples", type=int, default=1000)
    args = parser.parse_args(argv)
    config = export.load_job_config(args.job_dir)
    model = model_class(config.model)(config)
    model.build_for_training()
    latest = export.restore_latest_checkpoint(model, os.path.join(args.job_dir, "checkpoints"))
    net = features.digits_net()
    val = []
    for split in ("val", "train"):
        dataset = model.evaluation_data(config.data_dir, split, 250)
        for images in dataset if dataset is not None else ():
            val.append(images.numpy())
            if sum(map(len, val)) >= args.num_samples:
                break
        if val:
            break
    val = np.concatenate(val)[:args.num_samples]
    z = tf.random.stateless_normal([args.num_samples, config.latent_dim], seed=[config.seed, 19])
    sets = {"prior": model.generate(z).numpy(), "raw_prior": model.decode(z, training=False).numpy(),
            "reconstructions": np.concatenate([model.reconstruct(val[i:i + 250]).numpy()
                                               for i in range(0, len(val), 250)])}
    real = net(val, (-1.0, 1.0)).features
    out = {"step": int(latest.rsplit("-", 1)[-1]), "val_images": len(val),
           "prior_map": model.fit_prior_map(config.data_dir)}  # the same fit as the checkpoint's: its statistics
    for name, images in sets.items():
        got = net(images, (-1.0, 1.0))
        out[name] = {"confident": float(np.mean(got.probs.max(axis=1) >= CONFIDENCE)),
                     "kid_digits": metrics.kid(real, got.features, 10, min(1000, len(real)), 0),
                     "fd_digits": metrics.frechet_distance(real, got.features)}
    for name in ("prior", "raw_prior"):
        for metric in ("kid_digits", "fd_digits"):
            reference = out["reconstructions"][metric]  # KID is unbiased: near 0 it can fall below 0
            out[name][f"{metric}_ratio"] = out[name][metric] / reference if reference > 1e-3 else None
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
